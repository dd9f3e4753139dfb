"""How domain values are written into stored event state (JSON, via the library's transcoder)."""

from __future__ import annotations

from enum import Enum
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

from services.ledger.domain.values import (
    Owner,
    PauseReason,
    SwarmExit,
    SwarmRole,
    Tier,
    TransferReason,
)


class OwnerAsDict(Transcoding):
    type = Owner
    name = "owner"

    def encode(self, obj: Owner) -> dict[str, str]:
        return {"agent_id": obj.agent_id, "group_id": obj.group_id}

    def decode(self, data: dict[str, str]) -> Owner:
        return Owner(agent_id=data["agent_id"], group_id=data["group_id"])


class EnumAsValue(Transcoding):
    """Stores an enum member as its value; one instance per enum class, named after it."""

    def __init__(self, enum_class: type[Enum], name: str) -> None:
        self.type = enum_class
        self.name = name

    def encode(self, obj: Enum) -> Any:
        return obj.value

    def decode(self, data: Any) -> Enum:
        member: Enum = self.type(data)
        return member


DOMAIN_ENUMS: dict[str, type[Enum]] = {
    "tier": Tier,
    "transfer_reason": TransferReason,
    "swarm_role": SwarmRole,
    "swarm_exit": SwarmExit,
    "pause_reason": PauseReason,
}


def register_domain_transcodings(transcoder: JSONTranscoder) -> None:
    transcoder.register(OwnerAsDict())
    for name, enum_class in DOMAIN_ENUMS.items():
        transcoder.register(EnumAsValue(enum_class, name))

"""Value objects of the ownership domain: who can hold a case and the typed vocabulary of handoffs."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True, slots=True)
class Owner:
    """Who is accountable for a case: a person, a group queue, or a person within a group.

    Either id may be empty, but not both: a case can sit in a group's queue with no person on it.
    """

    agent_id: str = ""
    group_id: str = ""

    def __post_init__(self) -> None:
        if not self.agent_id and not self.group_id:
            raise ValueError("an owner needs an agent_id, a group_id or both")

    @property
    def is_person(self) -> bool:
        return bool(self.agent_id)

    def __str__(self) -> str:
        if self.agent_id and self.group_id:
            return f"{self.agent_id}@{self.group_id}"
        return self.agent_id or f"queue:{self.group_id}"


class Tier(Enum):
    """Support tier. L4 is the vendor or engineering line beyond in-house L3."""

    L1 = "L1"
    L2 = "L2"
    L3 = "L3"
    L4 = "L4"


class TransferReason(Enum):
    ESCALATION = "escalation"
    DEESCALATION = "deescalation"
    REROUTE = "reroute"  # sent to the wrong place first
    SHIFT_HANDOVER = "shift_handover"
    WORKLOAD_BALANCING = "workload_balancing"
    CUSTOMER_REQUEST = "customer_request"
    OTHER = "other"


class SwarmRole(Enum):
    CONSULTANT = "consultant"
    CONTRIBUTOR = "contributor"
    OBSERVER = "observer"


class SwarmExit(Enum):
    """Why a swarm participation ended."""

    LEFT = "left"
    CASE_RESOLVED = "case_resolved"
    BECAME_OWNER = "became_owner"


class PauseReason(Enum):
    AWAITING_CUSTOMER = "awaiting_customer"
    AWAITING_THIRD_PARTY = "awaiting_third_party"
    SCHEDULED = "scheduled"


class CaseStatus(Enum):
    OPEN = "open"
    PAUSED = "paused"
    RESOLVED = "resolved"

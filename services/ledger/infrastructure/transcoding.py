"""How domain values are written into stored event state (JSON, via the library's transcoder)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import Enum
from json.encoder import encode_basestring
from typing import Any

from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Transcoding

from services.ledger.domain.isotime import iso_text
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


class LedgerJSONTranscoder(JSONTranscoder):
    """The library's JSON transcoder, encoding several times faster, to the very same bytes.

    Every event is encoded once as it is stored, and the library's encoder calls back into Python
    for each datetime, owner and enum. Here a stored state (a dict of plain values and registered
    types) is written as text field by field, with one writer per value type; anything without a
    fast form (floats, lists, non-text keys) goes through the library's own encoder, so the output
    never differs (tests/unit/test_transcoding.py holds the two side by side). Decoding is the
    library's.
    """

    def __init__(self) -> None:
        super().__init__()
        self._writers: dict[type, Callable[[Any], str]] = {}

    def register(self, transcoding: Transcoding) -> None:
        super().register(transcoding)
        self._writers.clear()

    def encode(self, obj: Any) -> bytes:
        if type(obj) is not dict:
            return super().encode(obj)
        return self._dict_text(obj).encode("utf8")

    def _text(self, value: Any) -> str:
        write = self._writers.get(type(value))
        if write is None:
            write = self._writer_for(type(value))
        return write(value)

    def _dict_text(self, value: dict[Any, Any]) -> str:
        writers, writer_for = self._writers, self._writer_for
        try:
            items = [
                encode_basestring(k) + ":" + (writers.get(type(v)) or writer_for(type(v)))(v)
                for k, v in value.items()
            ]
        except TypeError:  # a key that is not text: the library's encoder converts or refuses it
            return self.encoder.encode(value)
        return "{" + ",".join(items) + "}"

    def _writer_for(self, kind: type) -> Callable[[Any], str]:
        transcoding = self.types.get(kind)
        writer: Callable[[Any], str]
        if kind is str:
            writer = encode_basestring
        elif kind is type(None):
            writer = _null_text
        elif kind is bool:
            writer = _bool_text
        elif kind is int:
            writer = int.__repr__
        elif kind is dict:
            writer = self._dict_text
        elif transcoding is None:  # floats, lists, unregistered types: exactly as the library does
            writer = self.encoder.encode
        elif type(transcoding) is DatetimeAsISO:
            writer = _datetime_iso_text
        elif type(transcoding) is OwnerAsDict:
            writer = _owner_text
        elif type(transcoding) is EnumAsValue and _text_valued(kind):
            writer = _text_enum_writer(transcoding.name)
        else:
            writer = self._transcoded_writer(transcoding)
        self._writers[kind] = writer
        return writer

    def _transcoded_writer(self, transcoding: Transcoding) -> Callable[[Any], str]:
        prefix = '{"_type_":' + encode_basestring(transcoding.name) + ',"_data_":'
        encode, text = transcoding.encode, self._text

        def write(value: Any) -> str:
            return prefix + text(encode(value)) + "}"

        return write


def _text_valued(kind: type) -> bool:
    return issubclass(kind, Enum) and all(type(member._value_) is str for member in kind)


def _text_enum_writer(name: str) -> Callable[[Enum], str]:
    prefix = '{"_type_":' + encode_basestring(name) + ',"_data_":'

    def write(value: Enum) -> str:
        return prefix + encode_basestring(value._value_) + "}"

    return write


def _null_text(_: None) -> str:
    return "null"


def _bool_text(value: bool) -> str:
    return "true" if value else "false"


def _datetime_iso_text(value: datetime) -> str:
    # isoformat() is digits and "-:T.+" only: nothing to escape.
    return '{"_type_":"datetime_iso","_data_":"' + iso_text(value) + '"}'


def _owner_text(owner: Owner) -> str:
    return (
        '{"_type_":"owner","_data_":{"agent_id":' + encode_basestring(owner.agent_id)
        + ',"group_id":' + encode_basestring(owner.group_id) + "}}"
    )  # fmt: skip

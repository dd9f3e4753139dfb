"""The canonical byte form of a case event and the hash chain over a case's events.

Every case event carries ``chain_hash``: the SHA-256 (lowercase hex) of its canonical document, which
includes the previous event's ``chain_hash`` (``GENESIS`` for a case's first event). Changing,
removing, reordering or inserting an event therefore breaks the link at that event.

The canonical document is UTF-8 JSON with sorted keys and no insignificant whitespace::

    {"case_id": str, "class_version": int, "fields": {...}, "previous_hash": str,
     "topic": str, "version": int}

``fields`` holds every stored field of the event except ``chain_hash`` itself, ``originator_id``
and ``originator_version`` (which appear as ``case_id`` and ``version``). Values are plain JSON:
strings, integers, booleans, null, objects and arrays; a datetime is its UTC instant as
``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (always six digits of microseconds); an enum is its value; a
dataclass value (an ``Owner``) is an object of its fields; a UUID is its 32-digit hex. Floats
are refused: their text form is not stable across encoders. The same document is rebuilt from the
stored JSON state (``services.audit.chain``), so the chain can be checked without the domain
classes, and from an export file without the database.

Pure Python: no I/O.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import Enum
from json.encoder import encode_basestring
from typing import Any
from uuid import UUID

from services.ledger.domain.isotime import iso_text
from services.ledger.domain.values import Owner

_CANONICAL_JSON = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
GENESIS = "0" * 64
CHAIN_FIELD = "chain_hash"
NOT_HASHED = frozenset({CHAIN_FIELD, "originator_id", "originator_version"})


def utc_text(value: datetime) -> str:
    tz = value.tzinfo
    if tz is UTC:  # the common case: no conversion, and isoformat() ends in "+00:00"
        text = iso_text(value)[:-6]
        return text + "Z" if value.microsecond else text + ".000000Z"
    if tz is None:
        raise ValueError(f"naive datetime {value!r} has no place in a hashed event")
    # isoformat with fixed microseconds is the same text as "%Y-%m-%dT%H:%M:%S.%fZ", faster.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


# Every event is hashed as it is made, so the common cases come first and skip the general ones.
_ATOMS = frozenset({str, int, bool, type(None)})
_DATACLASS_FIELDS: dict[type, tuple[str, ...]] = {}


def plain(value: Any) -> Any:
    """The canonical JSON value of a domain value (see the module docstring)."""
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is datetime:
        return utc_text(value)
    names = _DATACLASS_FIELDS.get(kind)
    if names is not None:
        return {name: plain(getattr(value, name)) for name in names}
    return _plain_any(value)


def _plain_any(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        raise TypeError("floats are not allowed in hashed events")
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, Enum):
        return plain(value.value)
    if isinstance(value, UUID):
        return value.hex
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = tuple(f.name for f in dataclasses.fields(value))
        _DATACLASS_FIELDS[type(value)] = names
        return {name: plain(getattr(value, name)) for name in names}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    raise TypeError(f"no canonical form for {type(value).__name__}")


def canonical_document(
    case_id: str,
    version: int,
    topic: str,
    class_version: int,
    fields: Mapping[str, Any],
    previous_hash: str,
) -> bytes:
    """The exact bytes that are hashed; ``fields`` must already be plain JSON values."""
    document = {
        "case_id": case_id,
        "class_version": class_version,
        "fields": fields,
        "previous_hash": previous_hash,
        "topic": topic,
        "version": version,
    }
    return _CANONICAL_JSON.encode(document).encode("utf-8")


def link_hash(
    case_id: str,
    version: int,
    topic: str,
    class_version: int,
    fields: Mapping[str, Any],
    previous_hash: str,
) -> str:
    document = canonical_document(case_id, version, topic, class_version, fields, previous_hash)
    return hashlib.sha256(document).hexdigest()


def event_fields(state: Mapping[str, Any]) -> dict[str, Any]:
    """The hashed fields of an event, from its attributes."""
    return {name: plain(value) for name, value in state.items() if name not in NOT_HASHED}


# --- the same hash, fast: every event is hashed as it is made ------------------------------------
#
# ``state_link_hash`` writes the canonical document as text, field by field, instead of building
# plain values and handing them to the sorting encoder. The text is byte for byte what
# ``canonical_document`` makes (tests/unit/test_chain.py compares them); any value it has no fast
# form for is encoded by ``canonical_document``'s own encoder.


def _canonical_text(value: Any) -> str:
    """The canonical JSON text of one domain value, as it appears inside the document."""
    write = _TEXT_WRITERS.get(type(value))
    if write is None:
        write = _text_writer_for(type(value))
    return write(value)


def _text_writer_for(kind: type) -> Callable[[Any], str]:
    writer: Callable[[Any], str]
    if issubclass(kind, Enum) and all(type(member._value_) is str for member in kind):
        writer = _text_enum_text
    elif issubclass(kind, Enum):
        writer = _enum_text
    elif dataclasses.is_dataclass(kind):
        names = sorted(f.name for f in dataclasses.fields(kind))
        writer = _dataclass_text_writer([(encode_basestring(n) + ":", n) for n in names])
    else:
        writer = _generic_text
    _TEXT_WRITERS[kind] = writer
    return writer


def _enum_text(value: Enum) -> str:
    return _canonical_text(value.value)


def _text_enum_text(value: Enum) -> str:
    return encode_basestring(value._value_)


def _owner_text(owner: Owner) -> str:
    # The dataclass writer's output for an Owner (fields sorted), without its generic steps.
    return (
        '{"agent_id":' + encode_basestring(owner.agent_id)
        + ',"group_id":' + encode_basestring(owner.group_id) + "}"
    )  # fmt: skip


def _dataclass_text_writer(keys: list[tuple[str, str]]) -> Callable[[Any], str]:
    def write(value: Any) -> str:
        return "{" + ",".join(key + _canonical_text(getattr(value, n)) for key, n in keys) + "}"

    return write


def _generic_text(value: Any) -> str:
    return _CANONICAL_JSON.encode(plain(value))


_TEXT_WRITERS: dict[type, Callable[[Any], str]] = {
    str: encode_basestring,
    type(None): lambda _: "null",
    bool: lambda value: "true" if value else "false",
    int: int.__repr__,
    datetime: lambda value: '"' + utc_text(value) + '"',
    float: _generic_text,  # refused by plain(), as everywhere
    Owner: _owner_text,
}
_HASHED_KEYS: dict[tuple[str, ...], list[tuple[str, str]]] = {}


def _hashed_keys(state: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The hashed field names of a state in canonical (sorted) order, with their JSON keys."""
    names = tuple(state)
    keys = _HASHED_KEYS.get(names)
    if keys is None:
        if not all(type(name) is str for name in names):
            raise TypeError("event field names must be text")
        keys = [(encode_basestring(n) + ":", n) for n in sorted(set(names) - NOT_HASHED)]
        _HASHED_KEYS[names] = keys
    return keys


def state_link_hash(
    case_id: str,
    version: int,
    topic: str,
    class_version: int,
    state: Mapping[str, Any],
    previous_hash: str,
) -> str:
    """``link_hash(case_id, version, topic, class_version, event_fields(state), previous_hash)``,
    the same digest, computed several times faster."""
    if not (type(case_id) is type(topic) is type(previous_hash) is str) or not (
        type(version) is type(class_version) is int
    ):
        return link_hash(case_id, version, topic, class_version, event_fields(state), previous_hash)
    parts = []
    writer = _TEXT_WRITERS.get
    for key, name in _hashed_keys(state):
        value = state[name]
        kind = type(value)
        if kind is str:  # most fields: ids, notes, topics
            parts.append(key + encode_basestring(value))
        elif value is None:
            parts.append(key + "null")
        else:
            parts.append(key + (writer(kind) or _text_writer_for(kind))(value))
    fields = ",".join(parts)
    document = (
        '{"case_id":' + encode_basestring(case_id)
        + ',"class_version":' + int.__repr__(class_version)
        + ',"fields":{' + fields
        + '},"previous_hash":' + encode_basestring(previous_hash)
        + ',"topic":' + encode_basestring(topic)
        + ',"version":' + int.__repr__(version) + "}"
    )  # fmt: skip
    return hashlib.sha256(document.encode("utf-8")).hexdigest()

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
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from uuid import UUID

_CANONICAL_JSON = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
GENESIS = "0" * 64
CHAIN_FIELD = "chain_hash"
NOT_HASHED = frozenset({CHAIN_FIELD, "originator_id", "originator_version"})


def utc_text(value: datetime) -> str:
    if value.tzinfo is None:
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

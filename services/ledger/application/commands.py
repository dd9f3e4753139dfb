"""Commands: what a caller asks the ledger to do, as plain immutable data.

Field names match the public contract's field names, so a validation error can name the field the
caller sent. ``occurred_at`` stays ``None`` when the caller did not send it; the handler then uses the
recording time. Keeping the absence visible matters for idempotency: a retried request without a time
must fingerprint the same as the original.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from enum import Enum
from operator import attrgetter
from typing import Any

from services.ledger.domain.isotime import iso_text_microseconds
from services.ledger.domain.values import Owner, PauseReason, SwarmRole, Tier, TransferReason


@dataclass(frozen=True, kw_only=True)
class Command:
    case_id: str
    command_id: str
    actor: str
    occurred_at: datetime | None = None
    expected_version: int | None = None
    # The W3C traceparent of the request that carried the command, stored with its events. Not
    # part of what the command asks for: a retry under another trace is still the same command.
    trace_parent: str | None = None

    @property
    def kind(self) -> str:
        return type(self).__name__

    def fingerprint(self) -> str:
        """A digest of everything the command asks for, except its idempotency key and trace.

        Stable across processes and releases: field names and plain values only (enum values,
        ISO times), never object identities or hash seeds.
        """
        kind, prefixes, values_of = _payload_of(type(self))
        payload = [kind]
        payload += [
            prefix + repr(value if type(value) in _AS_THEY_ARE else _canonical(value))
            for prefix, value in zip(prefixes, values_of(self), strict=True)
        ]
        return hashlib.sha256("\x1f".join(payload).encode()).hexdigest()


_PAYLOADS: dict[type, tuple[str, tuple[str, ...], Callable[[Any], tuple[Any, ...]]]] = {}
_NOT_ASKED = frozenset({"command_id", "trace_parent"})


def _payload_of(
    command_class: type[Command],
) -> tuple[str, tuple[str, ...], Callable[[Any], tuple[Any, ...]]]:
    """The class's kind, a ``name=`` prefix per fingerprinted field (sorted by name), and a getter
    of those fields' values in the same order. Every import fingerprints each of its commands."""
    payload = _PAYLOADS.get(command_class)
    if payload is None:
        names = sorted(f.name for f in fields(command_class) if f.name not in _NOT_ASKED)
        # Two or more fields always (case_id, actor, ...), so attrgetter returns a tuple.
        payload = (command_class.__name__, tuple(f"{n}=" for n in names), attrgetter(*names))
        _PAYLOADS[command_class] = payload
    return payload


_AS_THEY_ARE = frozenset({str, int, bool, type(None)})


def _canonical(value: Any) -> Any:
    if type(value) in _AS_THEY_ARE:  # most fields: nothing to convert
        return value
    if isinstance(value, Owner):
        return (value.agent_id, value.group_id)
    if isinstance(value, Enum):
        return value._value_
    if isinstance(value, datetime):
        return iso_text_microseconds(value)
    return value


@dataclass(frozen=True, kw_only=True)
class Assign(Command):
    owner: Owner
    tier: Tier | None = None
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class Transfer(Command):
    to_owner: Owner
    reason: TransferReason
    tier: Tier | None = None
    note: str = ""
    eta: datetime | None = None
    warm: bool = False


@dataclass(frozen=True, kw_only=True)
class JoinSwarm(Command):
    agent_id: str
    group_id: str = ""
    role: SwarmRole
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class LeaveSwarm(Command):
    agent_id: str
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class Pause(Command):
    reason: PauseReason
    until: datetime | None = None
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class Resume(Command):
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class Resolve(Command):
    resolution_code: str = ""
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class Reopen(Command):
    reason: str = ""
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class RecordActivity(Command):
    activity: str
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class CorrectOccurrence(Command):
    """Record when an earlier event of the case really happened (a compensating event)."""

    corrects_version: int
    corrected_occurred_at: datetime
    reason: str
    note: str = ""

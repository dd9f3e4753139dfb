"""Requests of the public contract → application commands.

Only translation happens here: enum numbers to domain enums, timestamps to aware datetimes,
messages to value objects. Anything malformed becomes an InvalidCommand naming the proto field.
Shape rules that do not depend on the wire format (lengths, characters, clock skew) live in the
application's validation, so in-process callers get them too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, TypeVar

from google.protobuf.message import Message

from ownership.v1 import ledger_pb2 as pb
from services.ledger.application import commands as c
from services.ledger.application.errors import FieldViolation, InvalidCommand
from services.ledger.application.validation import Limits, violations_of_values
from services.ledger.domain.values import Owner, PauseReason, SwarmRole, Tier, TransferReason

E = TypeVar("E", bound=Enum)

TIERS = {pb.TIER_L1: Tier.L1, pb.TIER_L2: Tier.L2, pb.TIER_L3: Tier.L3, pb.TIER_L4: Tier.L4}
TRANSFER_REASONS = {
    pb.TRANSFER_REASON_ESCALATION: TransferReason.ESCALATION,
    pb.TRANSFER_REASON_DEESCALATION: TransferReason.DEESCALATION,
    pb.TRANSFER_REASON_REROUTE: TransferReason.REROUTE,
    pb.TRANSFER_REASON_SHIFT_HANDOVER: TransferReason.SHIFT_HANDOVER,
    pb.TRANSFER_REASON_WORKLOAD_BALANCING: TransferReason.WORKLOAD_BALANCING,
    pb.TRANSFER_REASON_CUSTOMER_REQUEST: TransferReason.CUSTOMER_REQUEST,
    pb.TRANSFER_REASON_OTHER: TransferReason.OTHER,
}
SWARM_ROLES = {
    pb.SWARM_ROLE_CONSULTANT: SwarmRole.CONSULTANT,
    pb.SWARM_ROLE_CONTRIBUTOR: SwarmRole.CONTRIBUTOR,
    pb.SWARM_ROLE_OBSERVER: SwarmRole.OBSERVER,
}
PAUSE_REASONS = {
    pb.PAUSE_REASON_AWAITING_CUSTOMER: PauseReason.AWAITING_CUSTOMER,
    pb.PAUSE_REASON_AWAITING_THIRD_PARTY: PauseReason.AWAITING_THIRD_PARTY,
    pb.PAUSE_REASON_SCHEDULED: PauseReason.SCHEDULED,
}


# The range a Timestamp may hold: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_FIRST_SECOND, _LAST_SECOND = -62_135_596_800, 253_402_300_799
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Fields:
    """Collects violations while reading a request, so the caller learns every problem at once."""

    def __init__(self, request: Any, limits: Limits) -> None:
        self.request = request
        self.limits = limits
        self.violations: list[FieldViolation] = []

    def timestamp(self, name: str) -> datetime | None:
        if not self.request.HasField(name):
            return None
        ts = getattr(self.request, name)
        seconds, nanos = ts.seconds, ts.nanos
        if _FIRST_SECOND <= seconds <= _LAST_SECOND and 0 <= nanos < 1_000_000_000:
            # ToDatetime(tzinfo=UTC)'s result without its Python-level checks (imports parse
            # every command's time): nanoseconds truncated to microseconds, zone UTC.
            return _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)
        try:
            return ts.ToDatetime(tzinfo=UTC)  # type: ignore[no-any-return]
        except (ValueError, OverflowError):
            self.violations.append(FieldViolation(name, "is not a valid timestamp"))
            return None

    def enum(self, name: str, table: Mapping[Any, E], *, required: bool) -> E | None:
        number = getattr(self.request, name)
        if number == 0:
            if required:
                self.violations.append(FieldViolation(name, "is required"))
            return None
        member = table.get(number)
        if member is None:
            self.violations.append(FieldViolation(name, f"has unknown value {number}"))
        return member

    def owner(self, name: str) -> Owner | None:
        message = getattr(self.request, name)
        if not message.agent_id and not message.group_id:
            self.violations.append(FieldViolation(name, "needs an agent_id, a group_id or both"))
            return None
        return Owner(agent_id=message.agent_id, group_id=message.group_id)

    def common(self) -> dict[str, Any]:
        return {
            "case_id": self.request.case_id,
            "command_id": self.request.command_id,
            "actor": self.request.actor,
            "occurred_at": self.timestamp("occurred_at"),
            "expected_version": (
                self.request.expected_version if self.request.HasField("expected_version") else None
            ),
        }

    def build(self, factory: Callable[..., c.Command], **specific: Any) -> c.Command:
        common = self.common()
        if self.violations:
            # The command cannot be built, but the caller should still learn every problem at
            # once: add the shape checks the application would run on the fields that did parse.
            named = {v.field.split(".")[0] for v in self.violations}
            values = {k: v for k, v in (common | specific).items() if k not in named}
            shape = violations_of_values(values, self.limits, datetime.now(UTC))
            raise InvalidCommand(self.violations + shape)
        return factory(**common, **specific)


def assign(request: pb.AssignRequest, limits: Limits) -> c.Command:
    f = _Fields(request, limits)
    return f.build(
        c.Assign,
        owner=f.owner("owner"),
        tier=f.enum("tier", TIERS, required=False),
        note=request.note,
    )


def transfer(request: pb.TransferRequest, limits: Limits) -> c.Command:
    f = _Fields(request, limits)
    return f.build(
        c.Transfer,
        to_owner=f.owner("to_owner"),
        reason=f.enum("reason", TRANSFER_REASONS, required=True),
        tier=f.enum("tier", TIERS, required=False),
        note=request.note,
        eta=f.timestamp("eta"),
        warm=request.warm,
    )


def join_swarm(request: pb.JoinSwarmRequest, limits: Limits) -> c.Command:
    f = _Fields(request, limits)
    if not request.agent_id:
        f.violations.append(FieldViolation("agent_id", "is required"))
    return f.build(
        c.JoinSwarm,
        agent_id=request.agent_id,
        group_id=request.group_id,
        role=f.enum("role", SWARM_ROLES, required=True),
        note=request.note,
    )


def leave_swarm(request: pb.LeaveSwarmRequest, limits: Limits) -> c.Command:
    f = _Fields(request, limits)
    if not request.agent_id:
        f.violations.append(FieldViolation("agent_id", "is required"))
    return f.build(c.LeaveSwarm, agent_id=request.agent_id, note=request.note)


def pause(request: pb.PauseRequest, limits: Limits) -> c.Command:
    f = _Fields(request, limits)
    return f.build(
        c.Pause,
        reason=f.enum("reason", PAUSE_REASONS, required=True),
        until=f.timestamp("until"),
        note=request.note,
    )


def resume(request: pb.ResumeRequest, limits: Limits) -> c.Command:
    return _Fields(request, limits).build(c.Resume, note=request.note)


def resolve(request: pb.ResolveRequest, limits: Limits) -> c.Command:
    return _Fields(request, limits).build(
        c.Resolve, resolution_code=request.resolution_code, note=request.note
    )


def reopen(request: pb.ReopenRequest, limits: Limits) -> c.Command:
    return _Fields(request, limits).build(c.Reopen, reason=request.reason, note=request.note)


def record_activity(request: pb.RecordActivityRequest, limits: Limits) -> c.Command:
    f = _Fields(request, limits)
    if not request.activity:
        f.violations.append(FieldViolation("activity", "is required"))
    return f.build(c.RecordActivity, activity=request.activity, note=request.note)


def correct_occurrence(request: pb.CorrectOccurrenceRequest, limits: Limits) -> c.Command:
    f = _Fields(request, limits)
    if request.corrects_version < 1:
        f.violations.append(FieldViolation("corrects_version", "must name a version (from 1)"))
    corrected_at = f.timestamp("corrected_occurred_at")
    if corrected_at is None and not request.HasField("corrected_occurred_at"):
        f.violations.append(FieldViolation("corrected_occurred_at", "is required"))
    if not request.reason:
        f.violations.append(FieldViolation("reason", "is required"))
    return f.build(
        c.CorrectOccurrence,
        corrects_version=request.corrects_version,
        corrected_occurred_at=corrected_at,
        reason=request.reason,
        note=request.note,
    )


PARSERS: dict[str, Callable[[Any, Limits], c.Command]] = {
    "assign": assign,
    "transfer": transfer,
    "join_swarm": join_swarm,
    "leave_swarm": leave_swarm,
    "pause": pause,
    "resume": resume,
    "resolve": resolve,
    "reopen": reopen,
    "correct_occurrence": correct_occurrence,
    "record_activity": record_activity,
}


def batch_command(
    command: pb.BatchCommand, index: int, limits: Limits
) -> c.Command | InvalidCommand:
    """One command of a batch, or the reason it cannot be read (field paths include its place)."""
    kind = command.WhichOneof("command")
    prefix = f"commands[{index}]"
    if kind is None:
        return InvalidCommand([FieldViolation(prefix, "holds no command")])
    inner: Message = getattr(command, kind)
    try:
        return PARSERS[kind](inner, limits)
    except InvalidCommand as invalid:
        return prefixed(invalid, f"{prefix}.{kind}")


def prefixed(invalid: InvalidCommand, prefix: str) -> InvalidCommand:
    return InvalidCommand(
        [FieldViolation(f"{prefix}.{v.field}", v.description) for v in invalid.violations]
    )

"""Application results and stored events → messages of the public contract."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import Enum
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from ownership.v1 import ledger_pb2 as pb
from services.ledger.api.parsing import PAUSE_REASONS, SWARM_ROLES, TIERS, TRANSFER_REASONS
from services.ledger.application import commands as c
from services.ledger.application.ports import RecordedEvent
from services.ledger.application.results import CommandResult
from services.ledger.domain.case import Case
from services.ledger.domain.values import Owner, SwarmExit


def _inverse(table: Mapping[Any, Enum]) -> dict[Enum, Any]:
    return {member: number for number, member in table.items()}


TIER_NUMBERS = _inverse(TIERS)
TRANSFER_REASON_NUMBERS = _inverse(TRANSFER_REASONS)
SWARM_ROLE_NUMBERS = _inverse(SWARM_ROLES)
PAUSE_REASON_NUMBERS = _inverse(PAUSE_REASONS)
SWARM_EXIT_NUMBERS: dict[Enum, Any] = {
    SwarmExit.LEFT: pb.SWARM_EXIT_LEFT,
    SwarmExit.CASE_RESOLVED: pb.SWARM_EXIT_CASE_RESOLVED,
    SwarmExit.BECAME_OWNER: pb.SWARM_EXIT_BECAME_OWNER,
}


def append_result(result: CommandResult) -> pb.AppendResult:
    return pb.AppendResult(
        case_id=result.case_id,
        command_id=result.command_id,
        version=result.version,
        position=result.position,
        events_recorded=result.events_recorded,
        replayed=result.replayed,
    )


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def owner(value: Owner) -> pb.Owner:
    return pb.Owner(agent_id=value.agent_id, group_id=value.group_id)


def tier(value: Any) -> Any:
    return TIER_NUMBERS[value] if value is not None else pb.TIER_UNSPECIFIED


def event(recorded: RecordedEvent) -> pb.Event:
    e = recorded.event
    message = pb.Event(
        position=recorded.position,
        case_id=e.originator_id,
        version=e.originator_version,
        occurred_at=timestamp(e.occurred_at),
        recorded_at=timestamp(e.recorded_at),
        actor=e.actor,
        command_id=e.command_id,
    )
    match e:
        case Case.Assigned():
            message.assigned.CopyFrom(
                pb.Assigned(owner=owner(e.owner), tier=tier(e.tier), note=e.note)
            )
        case Case.Transferred():
            message.transferred.CopyFrom(
                pb.Transferred(
                    from_owner=owner(e.from_owner),
                    to_owner=owner(e.to_owner),
                    reason=TRANSFER_REASON_NUMBERS[e.reason],
                    from_tier=tier(e.from_tier),
                    to_tier=tier(e.to_tier),
                    note=e.note,
                    eta=timestamp(e.eta),
                    warm=e.warm,
                )
            )
        case Case.SwarmJoined():
            message.swarm_joined.CopyFrom(
                pb.SwarmJoined(
                    agent_id=e.member_agent_id,
                    group_id=e.member_group_id,
                    role=SWARM_ROLE_NUMBERS[e.role],
                    note=e.note,
                )
            )
        case Case.SwarmLeft():
            message.swarm_left.CopyFrom(
                pb.SwarmLeft(
                    agent_id=e.member_agent_id,
                    role=SWARM_ROLE_NUMBERS[e.role],
                    cause=SWARM_EXIT_NUMBERS[e.cause],
                    note=e.note,
                )
            )
        case Case.Paused():
            message.paused.CopyFrom(
                pb.Paused(
                    reason=PAUSE_REASON_NUMBERS[e.reason], until=timestamp(e.until), note=e.note
                )
            )
        case Case.Resumed():
            message.resumed.CopyFrom(pb.Resumed(reason=PAUSE_REASON_NUMBERS[e.reason], note=e.note))
        case Case.Resolved():
            message.resolved.CopyFrom(
                pb.Resolved(
                    resolver=owner(e.resolver), resolution_code=e.resolution_code, note=e.note
                )
            )
        case Case.Reopened():
            message.reopened.CopyFrom(pb.Reopened(reason=e.reason, note=e.note))
        case Case.ActivityRecorded():
            message.activity_recorded.CopyFrom(
                pb.ActivityRecorded(activity=e.activity, note=e.note)
            )
        case Case.OccurrenceCorrected():
            message.occurrence_corrected.CopyFrom(
                pb.OccurrenceCorrected(
                    corrects_version=e.corrects_version,
                    original_occurred_at=timestamp(e.original_occurred_at),
                    corrected_occurred_at=timestamp(e.corrected_occurred_at),
                    reason=e.reason,
                    note=e.note,
                )
            )
        case _:
            raise TypeError(f"no rendering for {type(e).__qualname__}")
    return message


def events(recorded: Iterable[RecordedEvent]) -> list[pb.Event]:
    return [event(r) for r in recorded]


def request_for(command: c.Command) -> Any:
    """The request message a client sends for ``command`` (the inverse of parsing)."""
    common: dict[str, Any] = {
        "case_id": command.case_id,
        "command_id": command.command_id,
        "actor": command.actor,
        "occurred_at": timestamp(command.occurred_at),
    }
    if command.expected_version is not None:
        common["expected_version"] = command.expected_version
    match command:
        case c.Assign():
            return pb.AssignRequest(
                **common, owner=owner(command.owner), tier=tier(command.tier), note=command.note
            )
        case c.Transfer():
            return pb.TransferRequest(
                **common,
                to_owner=owner(command.to_owner),
                reason=TRANSFER_REASON_NUMBERS[command.reason],
                tier=tier(command.tier),
                note=command.note,
                eta=timestamp(command.eta),
                warm=command.warm,
            )
        case c.JoinSwarm():
            return pb.JoinSwarmRequest(
                **common,
                agent_id=command.agent_id,
                group_id=command.group_id,
                role=SWARM_ROLE_NUMBERS[command.role],
                note=command.note,
            )
        case c.LeaveSwarm():
            return pb.LeaveSwarmRequest(**common, agent_id=command.agent_id, note=command.note)
        case c.Pause():
            return pb.PauseRequest(
                **common,
                reason=PAUSE_REASON_NUMBERS[command.reason],
                until=timestamp(command.until),
                note=command.note,
            )
        case c.Resume():
            return pb.ResumeRequest(**common, note=command.note)
        case c.Resolve():
            return pb.ResolveRequest(
                **common, resolution_code=command.resolution_code, note=command.note
            )
        case c.Reopen():
            return pb.ReopenRequest(**common, reason=command.reason, note=command.note)
        case c.RecordActivity():
            return pb.RecordActivityRequest(**common, activity=command.activity, note=command.note)
        case c.CorrectOccurrence():
            return pb.CorrectOccurrenceRequest(
                **common,
                corrects_version=command.corrects_version,
                corrected_occurred_at=timestamp(command.corrected_occurred_at),
                reason=command.reason,
                note=command.note,
            )
    raise TypeError(f"no request for {command.kind}")


BATCH_FIELDS = {
    "Assign": "assign",
    "Transfer": "transfer",
    "JoinSwarm": "join_swarm",
    "LeaveSwarm": "leave_swarm",
    "Pause": "pause",
    "Resume": "resume",
    "Resolve": "resolve",
    "Reopen": "reopen",
    "CorrectOccurrence": "correct_occurrence",
    "RecordActivity": "record_activity",
}


def batch_command(command: c.Command) -> pb.BatchCommand:
    return pb.BatchCommand(**{BATCH_FIELDS[command.kind]: request_for(command)})

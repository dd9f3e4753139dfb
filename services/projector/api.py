"""QueryService: parse → wait for min_position → query → reply."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration

from ownership.v1 import ledger_pb2 as lpb
from ownership.v1 import query_pb2 as pb
from ownership.v1 import query_pb2_grpc
from services.ledger.api import rendering
from services.ledger.api.rendering import timestamp
from services.ledger.api.servicer import errors_as_status, remaining_seconds
from services.ledger.application.errors import FieldViolation, InvalidCommand, ProjectionBehind
from services.ledger.application.ports import RecordedEvent
from services.ledger.application.reads import LedgerReader
from services.ledger.domain.values import PauseReason, SwarmRole, Tier
from services.observability.tracing import trace_and_span_ids
from services.projector import readmodels as rm
from services.projector.credit import UnknownPolicy, resolve_policy
from services.projector.database import ReadModelDatabase
from services.projector.projector import TRACKING_NAME, Projector
from services.projector.queries import (
    CurrentOwnership,
    Interval,
    OverstayTargets,
    OwnershipQueries,
    Participant,
)
from services.projector.telemetry import handoff_timeline
from services.projector.timeline import Level

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
STATUS = {
    "open": pb.CASE_STATUS_OPEN,
    "paused": pb.CASE_STATUS_PAUSED,
    "resolved": pb.CASE_STATUS_RESOLVED,
}
TIER_NUMBERS = {t.value: getattr(lpb, f"TIER_{t.value}") for t in Tier}
PAUSE_NUMBERS = {r: getattr(lpb, f"PAUSE_REASON_{r.name}") for r in PauseReason}
ROLE_NUMBERS = {r.value: getattr(lpb, f"SWARM_ROLE_{r.name}") for r in SwarmRole}
LEVELS = {pb.OWNERSHIP_LEVEL_PERSON: Level.PERSON, pb.OWNERSHIP_LEVEL_GROUP: Level.GROUP}
LEVEL_NUMBERS = {level: number for number, level in LEVELS.items()}


class ProjectionPosition:
    """Where the read models are: from the in-process projector, else from the tracking row."""

    def __init__(self, database: ReadModelDatabase, projector: Projector | None) -> None:
        self._db = database
        self._projector = projector

    def current(self) -> int:
        if self._projector is not None:
            return self._projector.position
        with self._db.reading() as cursor:
            return rm.read_position(cursor, TRACKING_NAME)

    def wait_for(self, position: int, timeout: float) -> None:
        if self._projector is not None:
            if not self._projector.wait_for_position(position, timeout):
                raise ProjectionBehind(position, self._projector.position)
            return
        deadline = time.monotonic() + timeout
        while (current := self.current()) < position:
            if time.monotonic() >= deadline:
                raise ProjectionBehind(position, current)
            time.sleep(0.01)


def _duration(value: Any) -> Duration:
    d = Duration()
    d.FromTimedelta(value)
    return d


def _enum_number(table: dict[Any, Any], value: Any) -> Any:
    return table.get(value, 0) if value is not None else 0


def _participants(participants: list[Participant]) -> list[pb.Participant]:
    return [
        pb.Participant(agent_id=p.agent_id, group_id=p.group_id, role=ROLE_NUMBERS[p.role])
        for p in participants
    ]


def _ownership(current: CurrentOwnership) -> pb.CaseOwnership:
    pause = PauseReason(current.pause_reason) if current.pause_reason else None
    return pb.CaseOwnership(
        case_id=current.case_id,
        owner=lpb.Owner(agent_id=current.agent_id, group_id=current.group_id),
        status=STATUS[current.status],
        pause_reason=_enum_number(PAUSE_NUMBERS, pause),
        tier=_enum_number(TIER_NUMBERS, current.tier),
        participants=_participants(current.participants),
        version=current.version,
        last_position=current.last_position,
        opened_at=timestamp(current.opened_at),
        owned_since=timestamp(current.owned_since),
        held_for=_duration(current.held_for),
    )


def _paused(paused: dict[PauseReason, Any]) -> list[pb.PausedTime]:
    return [
        pb.PausedTime(reason=PAUSE_NUMBERS[reason], duration=_duration(length))
        for reason, length in sorted(paused.items(), key=lambda item: item[0].value)
    ]


def _interval(interval: Interval) -> pb.OwnershipInterval:
    return pb.OwnershipInterval(
        level=LEVEL_NUMBERS[interval.level],
        holder=interval.holder,
        group_id=interval.group_id,
        tier=_enum_number(TIER_NUMBERS, interval.tier),
        start=timestamp(interval.start),
        end=timestamp(interval.end),
        duration=_duration(interval.duration),
        paused=_paused(interval.paused),
    )


# Without a deadline a read-your-writes wait is still bounded.
MAX_POSITION_WAIT = 30.0


def _wait_budget(remaining: float | None) -> float:
    """How long to wait for the projector: stop a little before the caller's deadline, so the
    answer (with the projector's position in its details) reaches the caller before it gives up."""
    if remaining is None:
        return MAX_POSITION_WAIT
    return max(0.0, min(remaining - min(0.1, remaining * 0.2), MAX_POSITION_WAIT))


def _limit(requested: int) -> int:
    return DEFAULT_LIMIT if requested <= 0 else min(requested, MAX_LIMIT)


def _one_of(**fields: str) -> None:
    given = [name for name, value in fields.items() if value]
    if len(given) != 1:
        names = " or ".join(fields)
        raise InvalidCommand([FieldViolation(names, f"exactly one of {names} is required")])


def _require(**fields: Any) -> None:
    missing = [FieldViolation(name, "is required") for name, value in fields.items() if not value]
    if missing:
        raise InvalidCommand(missing)


class QueryServicer(query_pb2_grpc.QueryServiceServicer):  # type: ignore[misc]
    def __init__(
        self,
        queries: OwnershipQueries,
        position: ProjectionPosition,
        targets: OverstayTargets,
        cases: LedgerReader | None = None,
    ) -> None:
        self._queries = queries
        self._position = position
        self._targets = targets
        self._cases = cases  # the ledger's case streams, for the handoff timeline

    @contextmanager
    def _answering(self, min_position: int, context: grpc.ServicerContext) -> Iterator[None]:
        with errors_as_status(context):
            try:
                if min_position > 0:
                    self._position.wait_for(min_position, _wait_budget(remaining_seconds(context)))
                yield
            except UnknownPolicy as unknown:
                raise InvalidCommand([FieldViolation("policy", str(unknown))]) from unknown

    def GetCurrentOwner(
        self, request: pb.GetCurrentOwnerRequest, context: grpc.ServicerContext
    ) -> pb.GetCurrentOwnerResponse:
        with self._answering(request.min_position, context):
            _require(case_id=request.case_id)
            current = self._queries.current_owner(request.case_id)
            return pb.GetCurrentOwnerResponse(case=_ownership(current))

    def ListCasesByOwner(
        self, request: pb.ListCasesByOwnerRequest, context: grpc.ServicerContext
    ) -> pb.ListCasesByOwnerResponse:
        with self._answering(request.min_position, context):
            _one_of(agent_id=request.agent_id, group_id=request.group_id)
            cases = self._queries.cases_by_owner(
                request.agent_id, request.group_id, _limit(request.limit)
            )
            return pb.ListCasesByOwnerResponse(cases=[_ownership(c) for c in cases])

    def GetOwnerAt(
        self, request: pb.GetOwnerAtRequest, context: grpc.ServicerContext
    ) -> pb.GetOwnerAtResponse:
        with self._answering(request.min_position, context):
            _require(case_id=request.case_id, at=request.HasField("at"))
            found = self._queries.owner_at(request.case_id, request.at.ToDatetime(tzinfo=UTC))
            return pb.GetOwnerAtResponse(
                owner=lpb.Owner(agent_id=found.agent_id, group_id=found.group_id),
                tier=_enum_number(TIER_NUMBERS, found.tier),
                participants=_participants(found.participants),
            )

    def GetOwnershipIntervals(
        self, request: pb.GetOwnershipIntervalsRequest, context: grpc.ServicerContext
    ) -> pb.GetOwnershipIntervalsResponse:
        with self._answering(request.min_position, context):
            _require(case_id=request.case_id)
            found = self._queries.intervals(request.case_id, LEVELS.get(request.level))
            return pb.GetOwnershipIntervalsResponse(intervals=[_interval(i) for i in found])

    def GetDurations(
        self, request: pb.GetDurationsRequest, context: grpc.ServicerContext
    ) -> pb.GetDurationsResponse:
        with self._answering(request.min_position, context):
            scopes = {
                pb.DURATION_SCOPE_CASE: "case",
                pb.DURATION_SCOPE_PERSON: "person",
                pb.DURATION_SCOPE_GROUP: "group",
            }
            if request.scope not in scopes:
                raise InvalidCommand([FieldViolation("scope", "is required")])
            totals = self._queries.durations(
                scopes[request.scope],
                request.key,
                LEVELS.get(request.level, Level.PERSON),
                _limit(request.limit),
            )
            return pb.GetDurationsResponse(
                totals=[
                    pb.DurationTotal(
                        key=t.key,
                        owned=_duration(t.owned),
                        paused=_paused(t.paused),
                        working=_duration(t.working),
                        tenures=t.tenures,
                    )
                    for t in totals
                ]
            )

    def GetHandoffStats(
        self, request: pb.GetHandoffStatsRequest, context: grpc.ServicerContext
    ) -> pb.GetHandoffStatsResponse:
        with self._answering(request.min_position, context):
            _require(case_id=request.case_id)
            s = self._queries.handoff_stats(request.case_id)
            transfers = s["warm"] + s["cold"]

            def level(prefix: str) -> pb.LevelHandoffs:
                return pb.LevelHandoffs(
                    changes=s[f"{prefix}_changes"],
                    stations=s[f"{prefix}_stations"],
                    unique_owners=s[f"unique_{prefix}s"],
                    returns=s[f"{prefix}_returns"],
                    pingpong_returns=s[f"{prefix}_pingpong_returns"],
                    longest_pingpong=s[f"{prefix}_longest_pingpong"],
                )

            return pb.GetHandoffStatsResponse(
                case_id=request.case_id,
                person=level("person"),
                group=level("group"),
                warm=s["warm"],
                cold=s["cold"],
                warm_share=s["warm"] / transfers if transfers else 0.0,
                tiers_crossed=s["tiers_crossed"],
            )

    def GetHandoverNetwork(
        self, request: pb.GetHandoverNetworkRequest, context: grpc.ServicerContext
    ) -> pb.GetHandoverNetworkResponse:
        with self._answering(request.min_position, context):
            level = LEVELS.get(request.level)
            if level is None:
                raise InvalidCommand([FieldViolation("level", "is required")])
            edges = self._queries.handover_network(level, _limit(request.top_n))
            return pb.GetHandoverNetworkResponse(
                edges=[pb.HandoverEdge(from_holder=a, to_holder=b, count=n) for a, b, n in edges]
            )

    def GetCredit(
        self, request: pb.GetCreditRequest, context: grpc.ServicerContext
    ) -> pb.GetCreditResponse:
        with self._answering(request.min_position, context):
            _one_of(case_id=request.case_id, agent_id=request.agent_id, group_id=request.group_id)
            policy = resolve_policy(request.policy or "ResolverTakesAll")
            report = self._queries.credit(
                policy, request.case_id, request.agent_id, request.group_id
            )
            return pb.GetCreditResponse(
                policy=report.policy,
                lines=[
                    pb.CreditLine(
                        case_id=line.case_id,
                        agent_id=line.agent_id,
                        group_id=line.group_id,
                        amount=line.amount,
                        kind=line.kind,
                        resolution_seq=line.resolution_seq,
                        at=timestamp(line.at),
                    )
                    for line in report.lines
                ],
                total_credit=report.total_credit,
                total_assists=report.total_assists,
            )

    def ListOverstays(
        self, request: pb.ListOverstaysRequest, context: grpc.ServicerContext
    ) -> pb.ListOverstaysResponse:
        with self._answering(request.min_position, context):
            found = self._queries.overstays(self._targets, request.group_id, _limit(request.limit))
            return pb.ListOverstaysResponse(
                overstays=[
                    pb.Overstay(case=_ownership(current), target=_duration(target))
                    for current, target in found
                ]
            )

    def GetHandoffTimeline(
        self, request: pb.GetHandoffTimelineRequest, context: grpc.ServicerContext
    ) -> pb.GetHandoffTimelineResponse:
        with self._answering(0, context):
            _require(case_id=request.case_id)
            if self._cases is None:
                context.abort(grpc.StatusCode.UNIMPLEMENTED, "no ledger reader in this process")
            reader = self._cases
            found = handoff_timeline(lambda after: reader.read_case(request.case_id, after, 0))
            return pb.GetHandoffTimelineResponse(entries=[timeline_entry(r) for r in found])


def timeline_entry(recorded: RecordedEvent) -> pb.HandoffTimelineEntry:
    trace_id, span_id = trace_and_span_ids(recorded.event.trace_parent)
    return pb.HandoffTimelineEntry(
        event=rendering.event(recorded), trace_id=trace_id, span_id=span_id
    )

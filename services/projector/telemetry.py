"""What the projector tells SREs: a span per batch and per traced event, and its metrics.

Each event that carries the trace context of the request that caused it gets an "apply" span in
that request's trace (its parent is the stored context), so one trace reads "service X called
Transfer → the ledger appended → the projector updated the read models". The batch's own span
links to every stored context it applied. Both cover the batch's derive + commit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Link, NonRecordingSpan, SpanKind

from services.ledger.application.ports import RecordedEvent
from services.ledger.domain.case import Case
from services.ledger.infrastructure.store import EventsourcingStore
from services.observability.metrics import Metrics, ProjectionLag
from services.observability.tracing import span_context_of

log = logging.getLogger(__name__)
MAX_LINKS = 128  # the SDK's default limit of links per span


def handoff_attributes(event: Case.Event) -> dict[str, Any]:
    """The facts of a handoff (transfer, swarm join or leave) as span attributes; {} otherwise."""
    match event:
        case Case.Transferred():
            attributes: dict[str, Any] = {
                "ledger.handoff.from": str(event.from_owner),
                "ledger.handoff.to": str(event.to_owner),
                "ledger.handoff.reason": event.reason.value,
                "ledger.handoff.warm": event.warm,
            }
            if event.to_tier is not None:
                attributes["ledger.handoff.tier"] = event.to_tier.value
            if event.from_tier is not None:
                attributes["ledger.handoff.from_tier"] = event.from_tier.value
            if event.eta is not None:
                attributes["ledger.handoff.eta"] = event.eta.isoformat()
            return attributes
        case Case.SwarmJoined():
            return {
                "ledger.swarm.agent_id": event.member_agent_id,
                "ledger.swarm.group_id": event.member_group_id,
                "ledger.swarm.role": event.role.value,
            }
        case Case.SwarmLeft():
            return {
                "ledger.swarm.agent_id": event.member_agent_id,
                "ledger.swarm.role": event.role.value,
                "ledger.swarm.reason": event.cause.value,
            }
    return {}


class ProjectorTelemetry:
    """The projector's observer (see ``Projector``): spans through ``tracer``, figures into
    ``metrics``. Never lets its own trouble stop the projector."""

    def __init__(self, tracer: trace.Tracer, metrics: Metrics | None = None) -> None:
        self._tracer = tracer
        self._metrics = metrics

    def batch_applied(
        self,
        batch: Sequence[RecordedEvent],
        histories: Mapping[str, Sequence[Case.Event]],
        seconds: float,
    ) -> None:
        try:
            self._trace(batch, seconds)
            if self._metrics is not None:
                self._measure(batch, histories, seconds)
        except Exception:
            log.exception("projector telemetry failed; projecting goes on")

    def _trace(self, batch: Sequence[RecordedEvent], seconds: float) -> None:
        traced = [
            (recorded, context)
            for recorded in batch
            if (context := span_context_of(recorded.event.trace_parent)) is not None
        ]
        ended = time.time_ns()
        started = ended - int(seconds * 1e9)
        batch_span = self._tracer.start_span(
            "projector.batch",
            context=trace.set_span_in_context(trace.INVALID_SPAN),  # a root of its own
            kind=SpanKind.CONSUMER,
            start_time=started,
            links=[
                Link(context, {"ledger.position": recorded.position})
                for recorded, context in traced[:MAX_LINKS]
            ],
            attributes={
                "ledger.events": len(batch),
                "ledger.first_position": batch[0].position,
                "ledger.last_position": batch[-1].position,
            },
        )
        if batch_span.is_recording():
            batch_link = [Link(batch_span.get_span_context())]
            for recorded, context in traced:
                self._apply_span(recorded, context, batch_link, started, ended)
        batch_span.end(end_time=ended)

    def _apply_span(
        self,
        recorded: RecordedEvent,
        stored: trace.SpanContext,
        batch_link: list[Link],
        started: int,
        ended: int,
    ) -> None:
        event = recorded.event
        kind = type(event).__name__
        handoff = handoff_attributes(event)
        span = self._tracer.start_span(
            f"projector.apply {kind}",
            context=trace.set_span_in_context(NonRecordingSpan(stored)),
            kind=SpanKind.CONSUMER,
            start_time=started,
            links=batch_link,
            attributes={
                "ledger.case_id": event.originator_id,
                "ledger.version": event.originator_version,
                "ledger.position": recorded.position,
                "ledger.event": kind,
                **handoff,
            },
        )
        if handoff:
            span.add_event("handoff", {"ledger.case_id": event.originator_id, **handoff})
        span.end(end_time=ended)

    def _measure(
        self,
        batch: Sequence[RecordedEvent],
        histories: Mapping[str, Sequence[Case.Event]],
        seconds: float,
    ) -> None:
        metrics = self._metrics
        assert metrics is not None
        metrics.projector_batch_seconds.observe(seconds)
        metrics.projector_events.inc(len(batch))
        metrics.projector_position.set(batch[-1].position)
        first_new: dict[str, int] = {}
        for recorded in batch:
            first_new.setdefault(recorded.event.originator_id, recorded.event.originator_version)
        for case_id, version in first_new.items():
            for group, length in ended_group_tenures(histories[case_id], version):
                metrics.ownership_seconds.labels(group=group).observe(length)


def ended_group_tenures(events: Sequence[Case.Event], from_version: int) -> list[tuple[str, float]]:
    """(group, seconds in event time) of each group tenure that an event at ``from_version`` or
    later ends, in ledger order: a transfer to another group, or a resolution. A reopening starts
    a new tenure for the group that resolved the case."""
    ended: list[tuple[str, float]] = []
    holder: tuple[str, datetime] | None = None  # (group, since)
    resolver_group = ""
    for event in events:
        at = event.occurred_at
        before = holder
        match event:
            case Case.Assigned():
                holder = (event.owner.group_id, at)
            case Case.Transferred() if before is None or before[0] != event.to_owner.group_id:
                holder = (event.to_owner.group_id, at)
            case Case.Resolved():
                resolver_group = event.resolver.group_id
                holder = None
            case Case.Reopened():
                holder = (resolver_group, at)
        ends_tenure = before is not None and holder is not before and before[0]
        if ends_tenure and before is not None and event.originator_version >= from_version:
            ended.append((before[0], max((at - before[1]).total_seconds(), 0.0)))
    return ended


def projection_lag(
    events: EventsourcingStore, position: Callable[[], int], now: Callable[[], datetime]
) -> ProjectionLag:
    """How far the read models trail the ledger: in events, and as the age of the oldest event
    they do not include yet."""
    projected = position()
    head = events.max_position()
    if projected >= head:
        return ProjectionLag(projected, head, 0.0)
    oldest = events.read_all(projected, 1)
    seconds = (now() - oldest[0].event.recorded_at).total_seconds() if oldest else 0.0
    return ProjectionLag(projected, head, max(seconds, 0.0))


HANDOFF_EVENTS = (
    Case.Assigned,
    Case.Transferred,
    Case.SwarmJoined,
    Case.SwarmLeft,
    Case.Resolved,
    Case.Reopened,
)


def handoff_timeline(case_events: Callable[[int], Sequence[RecordedEvent]]) -> list[RecordedEvent]:
    """A case's handoff events in ledger order; ``case_events(after_version)`` reads a page."""
    timeline: list[RecordedEvent] = []
    after = 0
    while page := case_events(after):
        timeline += [r for r in page if isinstance(r.event, HANDOFF_EVENTS)]
        after = page[-1].event.originator_version
    return timeline

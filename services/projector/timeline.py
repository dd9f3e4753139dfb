"""A case's history as time spans: who held it, who helped, when it waited, when it was resolved.

Every read model is a function of one case's events, so a case is always re-derived whole from
its events. That makes a late event (one whose ``occurred_at`` is earlier than events already
projected) cheap to handle and makes incremental projection equal a rebuild by construction.

Time rules:
- Ownership follows event time: owner-bearing events are ordered by (occurred_at, version), and
  each one's owner holds the case from its occurred_at until the next one's.
- Paired spans — a pause and the event that ends it, a swarm join and its leave — pair in the
  ledger's own order (version). If clock skew puts the end before the start, the span's length is
  clamped to zero and flagged; it is never negative.
- Resolution ends every open tenure; a reopening starts a new tenure for the owner it returns to.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

from services.ledger.domain.case import Case
from services.ledger.domain.values import Owner, PauseReason, SwarmRole, Tier

ZERO = timedelta(0)


class Level(Enum):
    PERSON = "person"
    GROUP = "group"


@dataclass(frozen=True, slots=True)
class Span:
    start: datetime
    end: datetime | None  # None: still open
    clamped: bool = False  # the end came before the start (clock skew); length taken as zero

    def length(self, until: datetime) -> timedelta:
        end = self.end if self.end is not None else until
        return max(end - self.start, ZERO)

    def overlap(self, other: Span, until: datetime) -> timedelta:
        start = max(self.start, other.start)
        end = min(self.end or until, other.end or until)
        return max(end - start, ZERO)


@dataclass(frozen=True, slots=True)
class Tenure:
    """One uninterrupted period during which ``holder`` was accountable at ``level``."""

    level: Level
    holder: str
    group_id: str  # for a person: the group they held it in (at the start)
    tier: Tier | None
    span: Span
    seq: int  # 1, 2, … within the case and level


@dataclass(frozen=True, slots=True)
class Participation:
    agent_id: str
    group_id: str
    role: SwarmRole
    span: Span


@dataclass(frozen=True, slots=True)
class Pause:
    reason: PauseReason
    span: Span


@dataclass(frozen=True, slots=True)
class Handoff:
    at: datetime
    version: int
    from_owner: Owner
    to_owner: Owner
    warm: bool
    from_tier: Tier | None
    to_tier: Tier | None


@dataclass(frozen=True, slots=True)
class Resolution:
    seq: int  # 1 for the first resolution of the case, 2 after a reopening, …
    at: datetime
    version: int
    resolver: Owner
    reopened_at: datetime | None  # when a reopening undid it, else None


@dataclass(slots=True)
class CaseTimeline:
    case_id: str
    first_owner: Owner
    opened_at: datetime
    last_at: datetime  # latest occurred_at of any event of the case
    person_tenures: list[Tenure] = field(default_factory=list)
    group_tenures: list[Tenure] = field(default_factory=list)
    swarm: list[Participation] = field(default_factory=list)
    pauses: list[Pause] = field(default_factory=list)
    handoffs: list[Handoff] = field(default_factory=list)
    resolutions: list[Resolution] = field(default_factory=list)
    owner_sequence: list[Owner] = field(default_factory=list)  # owner after each owner event

    def tenures(self, level: Level) -> list[Tenure]:
        return self.person_tenures if level is Level.PERSON else self.group_tenures

    def paused_within(self, span: Span, until: datetime) -> dict[PauseReason, timedelta]:
        paused: dict[PauseReason, timedelta] = {}
        for pause in self.pauses:
            overlap = pause.span.overlap(span, until)
            if overlap > ZERO:
                paused[pause.reason] = paused.get(pause.reason, ZERO) + overlap
        return paused


def _ordered(events: Iterable[Case.Event]) -> list[Case.Event]:
    return sorted(events, key=lambda e: (e.occurred_at, e.originator_version))


def _span(start: datetime, end: datetime | None) -> Span:
    if end is not None and end < start:
        return Span(start, start, clamped=True)
    return Span(start, end)


class _TenureTrack:
    """Opens and closes tenures at one level as the owner changes in event time."""

    def __init__(self, level: Level) -> None:
        self.level = level
        self.closed: list[Tenure] = []
        self.open: tuple[str, str, Tier | None, datetime] | None = None

    def holder_of(self, owner: Owner) -> str:
        return owner.agent_id if self.level is Level.PERSON else owner.group_id

    def move(self, owner: Owner | None, tier: Tier | None, at: datetime) -> None:
        holder = self.holder_of(owner) if owner is not None else ""
        if self.open is not None and self.open[0] == holder:
            return
        self.close(at)
        if holder and owner is not None:
            self.open = (holder, owner.group_id, tier, at)

    def close(self, at: datetime) -> None:
        if self.open is None:
            return
        holder, group_id, tier, start = self.open
        self.closed.append(
            Tenure(self.level, holder, group_id, tier, Span(start, at), len(self.closed) + 1)
        )
        self.open = None

    def finish(self) -> list[Tenure]:
        if self.open is not None:
            holder, group_id, tier, start = self.open
            self.closed.append(
                Tenure(self.level, holder, group_id, tier, Span(start, None), len(self.closed) + 1)
            )
            self.open = None
        return self.closed


def derive(case_id: str, events: Sequence[Case.Event]) -> CaseTimeline:
    """The timeline of one case from all of its events (any order; at least the Assigned)."""
    in_version_order = sorted(events, key=lambda e: e.originator_version)
    first = in_version_order[0]
    if not isinstance(first, Case.Assigned):
        raise ValueError(f"case {case_id} does not start with Assigned")
    timeline = CaseTimeline(
        case_id=case_id,
        first_owner=first.owner,
        opened_at=first.occurred_at,
        last_at=max(e.occurred_at for e in events),
    )
    _derive_ownership(timeline, _ordered(events))
    _derive_paired_spans(timeline, in_version_order)
    return timeline


def _derive_ownership(timeline: CaseTimeline, events: list[Case.Event]) -> None:
    people, groups = _TenureTrack(Level.PERSON), _TenureTrack(Level.GROUP)
    owner: Owner | None = None
    tier: Tier | None = None
    # Counted, not flagged: clock skew may put a reopening before its resolution in event time,
    # and a flag would then stay "resolved" for the rest of the case.
    resolutions = reopenings = 0
    for event in events:
        at = event.occurred_at
        match event:
            case Case.Assigned():
                owner, tier = event.owner, event.tier
                timeline.owner_sequence.append(owner)
            case Case.Transferred():
                timeline.handoffs.append(
                    Handoff(
                        at,
                        event.originator_version,
                        event.from_owner,
                        event.to_owner,
                        event.warm,
                        event.from_tier,
                        event.to_tier,
                    )
                )
                owner, tier = event.to_owner, event.to_tier
                timeline.owner_sequence.append(owner)
            case Case.Resolved():
                resolutions += 1
            case Case.Reopened():
                reopenings += 1
            case _:
                continue
        holding = None if resolutions > reopenings else owner
        people.move(holding, tier, at)
        groups.move(holding, tier, at)
    timeline.person_tenures = people.finish()
    timeline.group_tenures = groups.finish()


def _derive_paired_spans(timeline: CaseTimeline, events: list[Case.Event]) -> None:
    paused: tuple[PauseReason, datetime] | None = None
    joined: dict[str, tuple[str, SwarmRole, datetime]] = {}
    resolutions: list[tuple[datetime, int, Owner]] = []
    reopenings: list[datetime] = []

    def end_pause(at: datetime) -> None:
        nonlocal paused
        if paused is not None:
            timeline.pauses.append(Pause(paused[0], _span(paused[1], at)))
            paused = None

    for event in events:
        at = event.occurred_at
        match event:
            case Case.Paused():
                paused = (event.reason, at)
            case Case.Resumed():
                end_pause(at)
            case Case.Resolved():
                end_pause(at)
                resolutions.append((at, event.originator_version, event.resolver))
            case Case.Reopened():
                reopenings.append(at)
            case Case.SwarmJoined():
                joined[event.member_agent_id] = (event.member_group_id, event.role, at)
            case Case.SwarmLeft():
                member = joined.pop(event.member_agent_id, None)
                if member is not None:  # the domain guarantees a join; stay total anyway
                    group_id, role, start = member
                    timeline.swarm.append(
                        Participation(event.member_agent_id, group_id, role, _span(start, at))
                    )
    if paused is not None:
        timeline.pauses.append(Pause(paused[0], Span(paused[1], None)))
    for agent_id, (group_id, role, start) in joined.items():
        timeline.swarm.append(Participation(agent_id, group_id, role, Span(start, None)))
    timeline.resolutions = [
        Resolution(
            seq=i + 1,
            at=at,
            version=version,
            resolver=resolver,
            reopened_at=reopenings[i] if i < len(reopenings) else None,
        )
        for i, (at, version, resolver) in enumerate(resolutions)
    ]

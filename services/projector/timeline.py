"""A case's history as time spans: who held it, who helped, when it waited, when it was resolved.

Every read model is a function of one case's events. The projector extends a case's timeline event
by event while events arrive in event-time order, and derives it whole again from all of the case's
events when a late one (an ``occurred_at`` earlier than events already projected) arrives; both
give exactly what ``derive`` gives for the same events.

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

    def tenures(self) -> list[Tenure]:
        """Every tenure so far, the open one (if any) last with no end; the track is unchanged."""
        if self.open is None:
            return list(self.closed)
        holder, group_id, tier, start = self.open
        current = Tenure(
            self.level, holder, group_id, tier, Span(start, None), len(self.closed) + 1
        )
        return [*self.closed, current]


class TimelineBuilder:
    """Derives a case's timeline one event at a time.

    Ownership is taken in event-time order (occurred_at, then version) and paired spans in the
    ledger's order (version): ``derive`` feeds the two passes separately. An event that is last in
    both orders — its occurred_at is not earlier than any event already added — can be added with
    ``add`` to both passes at once, which is what keeps live projection incremental.
    """

    def __init__(self, case_id: str, first: Case.Event) -> None:
        if not isinstance(first, Case.Assigned):
            raise ValueError(f"case {case_id} does not start with Assigned")
        self.case_id = case_id
        self.first_owner = first.owner
        self.opened_at = first.occurred_at
        self.last_at = first.occurred_at  # latest occurred_at of any event added
        # ownership, in event-time order
        self._people, self._groups = _TenureTrack(Level.PERSON), _TenureTrack(Level.GROUP)
        self._owner: Owner | None = None
        self._tier: Tier | None = None
        # Counted, not flagged: clock skew may put a reopening before its resolution in event time,
        # and a flag would then stay "resolved" for the rest of the case.
        self._resolutions = self._reopenings = 0
        self.handoffs: list[Handoff] = []
        self.owner_sequence: list[Owner] = []
        # paired spans, in version order
        self._paused: tuple[PauseReason, datetime] | None = None
        self._joined: dict[str, tuple[str, SwarmRole, datetime]] = {}
        self.pauses: list[Pause] = []
        self.swarm: list[Participation] = []
        self._resolved: list[tuple[datetime, int, Owner]] = []
        self._reopened: list[datetime] = []

    def add(self, event: Case.Event) -> None:
        """Add an event that is last in both event-time and version order."""
        self.add_in_event_time(event)
        self.add_in_version_order(event)

    def add_in_event_time(self, event: Case.Event) -> None:
        at = event.occurred_at
        self.last_at = max(self.last_at, at)
        match event:
            case Case.Assigned():
                self._owner, self._tier = event.owner, event.tier
                self.owner_sequence.append(event.owner)
            case Case.Transferred():
                self.handoffs.append(
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
                self._owner, self._tier = event.to_owner, event.to_tier
                self.owner_sequence.append(event.to_owner)
            case Case.Resolved():
                self._resolutions += 1
            case Case.Reopened():
                self._reopenings += 1
            case _:
                return
        holding = None if self._resolutions > self._reopenings else self._owner
        self._people.move(holding, self._tier, at)
        self._groups.move(holding, self._tier, at)

    def add_in_version_order(self, event: Case.Event) -> None:
        at = event.occurred_at
        match event:
            case Case.Paused():
                self._paused = (event.reason, at)
            case Case.Resumed():
                self._end_pause(at)
            case Case.Resolved():
                self._end_pause(at)
                self._resolved.append((at, event.originator_version, event.resolver))
            case Case.Reopened():
                self._reopened.append(at)
            case Case.SwarmJoined():
                self._joined[event.member_agent_id] = (event.member_group_id, event.role, at)
            case Case.SwarmLeft():
                member = self._joined.pop(event.member_agent_id, None)
                if member is not None:  # the domain guarantees a join; stay total anyway
                    group_id, role, start = member
                    self.swarm.append(
                        Participation(event.member_agent_id, group_id, role, _span(start, at))
                    )

    def _end_pause(self, at: datetime) -> None:
        if self._paused is not None:
            self.pauses.append(Pause(self._paused[0], _span(self._paused[1], at)))
            self._paused = None

    def timeline(self) -> CaseTimeline:
        """The timeline of the events added so far (open spans have no end); the builder can go on."""
        pauses = list(self.pauses)
        if self._paused is not None:
            pauses.append(Pause(self._paused[0], Span(self._paused[1], None)))
        swarm = list(self.swarm)
        for agent_id, (group_id, role, start) in self._joined.items():
            swarm.append(Participation(agent_id, group_id, role, Span(start, None)))
        reopened = self._reopened
        return CaseTimeline(
            case_id=self.case_id,
            first_owner=self.first_owner,
            opened_at=self.opened_at,
            last_at=self.last_at,
            person_tenures=self._people.tenures(),
            group_tenures=self._groups.tenures(),
            swarm=swarm,
            pauses=pauses,
            handoffs=list(self.handoffs),
            resolutions=[
                Resolution(
                    seq=i + 1,
                    at=at,
                    version=version,
                    resolver=resolver,
                    reopened_at=reopened[i] if i < len(reopened) else None,
                )
                for i, (at, version, resolver) in enumerate(self._resolved)
            ],
            owner_sequence=list(self.owner_sequence),
        )


def builder_of(case_id: str, events: Sequence[Case.Event]) -> TimelineBuilder:
    """A builder holding all of ``events`` (any order; at least the Assigned), each pass in its order."""
    in_version_order = sorted(events, key=lambda e: e.originator_version)
    builder = TimelineBuilder(case_id, in_version_order[0])
    for event in _ordered(events):
        builder.add_in_event_time(event)
    for event in in_version_order:
        builder.add_in_version_order(event)
    return builder


def derive(case_id: str, events: Sequence[Case.Event]) -> CaseTimeline:
    """The timeline of one case from all of its events (any order; at least the Assigned)."""
    return builder_of(case_id, events).timeline()

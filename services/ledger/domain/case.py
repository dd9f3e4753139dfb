"""The Case aggregate: the ownership history of one support case.

Each command method checks the rules against the case's current state first and only then triggers
events, so a refused command leaves the aggregate untouched. Events are past-tense facts nested in the
aggregate, in the style of the eventsourcing library; each carries a ``class_version`` so that a later
change of shape can be upcast instead of editing stored history.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any, ClassVar, Protocol, cast

from eventsourcing.domain import (
    BaseAggregate,
    CanInitAggregate,
    CanMutateAggregate,
    MetaDomainEvent,
)
from eventsourcing.utils import get_topic

from services.ledger.domain.chain import CHAIN_FIELD, GENESIS, state_link_hash
from services.ledger.domain.errors import Rule, RuleViolated
from services.ledger.domain.values import (
    CaseStatus,
    Owner,
    PauseReason,
    SwarmExit,
    SwarmRole,
    Tier,
    TransferReason,
)


@dataclass(frozen=True, slots=True)
class Provenance:
    """Who asked for a change, when it happened out there, and under which idempotency key.

    ``trace_parent`` is the W3C ``traceparent`` of the request that caused the change (None when
    it came untraced), so whoever reads the event later can link its work to that trace.
    """

    occurred_at: datetime
    actor: str
    command_id: str
    trace_parent: str | None = None

    def as_event_kwargs(self) -> dict[str, Any]:
        return {
            "occurred_at": self.occurred_at,
            "actor": self.actor,
            "command_id": self.command_id,
            "trace_parent": self.trace_parent,
        }


@dataclass(frozen=True, slots=True)
class SwarmMember:
    agent_id: str
    group_id: str
    role: SwarmRole


class Case(BaseAggregate[str]):
    """One case's ownership: the accountable owner, its swarm, its pause state and its tier."""

    class Event(CanMutateAggregate[str], metaclass=MetaDomainEvent):
        """Base of every case event. ``timestamp`` is when the ledger recorded it (``recorded_at``).

        ``chain_hash`` links the event to the previous one of its case (``domain/chain.py``);
        version 1 events were stored before the chain existed and load with an empty one.
        ``trace_parent`` is the W3C traceparent of the request that caused the event (None when
        untraced); version 2 events were stored before it existed and load with none.
        """

        class_version: ClassVar[int] = 3
        originator_id: str
        originator_version: int
        timestamp: datetime
        occurred_at: datetime
        actor: str
        command_id: str
        chain_hash: str
        trace_parent: str | None

        @property
        def recorded_at(self) -> datetime:
            return self.timestamp

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state[CHAIN_FIELD] = ""

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state["trace_parent"] = None

        def mutate(self, aggregate: Any) -> Any:
            case = super().mutate(aggregate)
            assert case is not None
            note_sealed(case, self.originator_version, self.chain_hash, self.occurred_at)
            return case

    class Assigned(Event, CanInitAggregate[str]):
        """The case was opened in the ledger with its first accountable owner."""

        originator_topic: str
        owner: Owner
        tier: Tier | None
        note: str

    class Transferred(Event):
        """Accountability moved from one owner to another (a handoff)."""

        from_owner: Owner
        to_owner: Owner
        reason: TransferReason
        from_tier: Tier | None
        to_tier: Tier | None
        note: str
        eta: datetime | None
        warm: bool

        def apply(self, aggregate: Case) -> None:
            aggregate.owner = self.to_owner
            aggregate.tier = self.to_tier

    class SwarmJoined(Event):
        """An expert joined the case's swarm while the owner kept the case."""

        member_agent_id: str
        member_group_id: str
        role: SwarmRole
        note: str

        def apply(self, aggregate: Case) -> None:
            aggregate.swarm[self.member_agent_id] = SwarmMember(
                self.member_agent_id, self.member_group_id, self.role
            )

    class SwarmLeft(Event):
        member_agent_id: str
        role: SwarmRole
        cause: SwarmExit
        note: str

        def apply(self, aggregate: Case) -> None:
            del aggregate.swarm[self.member_agent_id]

    class Paused(Event):
        reason: PauseReason
        until: datetime | None
        note: str

        def apply(self, aggregate: Case) -> None:
            aggregate.status = CaseStatus.PAUSED
            aggregate.pause_reason = self.reason

    class Resumed(Event):
        reason: PauseReason  # the pause this ends, so a reader needs no lookback
        note: str

        def apply(self, aggregate: Case) -> None:
            aggregate.status = CaseStatus.OPEN
            aggregate.pause_reason = None

    class Resolved(Event):
        """The case was resolved while ``resolver`` was accountable; a pause in force ends here."""

        resolver: Owner
        resolution_code: str
        note: str

        def apply(self, aggregate: Case) -> None:
            aggregate.status = CaseStatus.RESOLVED
            aggregate.pause_reason = None

    class Reopened(Event):
        """A resolved case came back; it returns to the owner who resolved it."""

        reason: str
        note: str

        def apply(self, aggregate: Case) -> None:
            aggregate.status = CaseStatus.OPEN

    class OccurrenceCorrected(Event):
        """The time an earlier event happened was recorded wrongly; this is when it really did.

        A compensating fact: the corrected event stays as it was stored, and readers apply the
        correction (the latest one of an event wins). ``original_occurred_at`` is the time in
        force before this correction, so the history reads on its own.
        """

        corrects_version: int
        original_occurred_at: datetime
        corrected_occurred_at: datetime
        reason: str
        note: str

        def apply(self, aggregate: Case) -> None:
            aggregate.occurred_at_of[self.corrects_version] = self.corrected_occurred_at
            aggregate.corrections.add(self.originator_version)

    class ActivityRecorded(Event):
        """Something happened on the case that moved neither its owner nor its status.

        Real support logs record many such steps (a note, a closure after resolution, a status
        the ledger has no word for). Keeping them keeps the case's event times true: its duration
        runs to its last activity. Allowed in any state, resolved included, and changes nothing.
        """

        activity: str
        note: str

    def __init__(self, owner: Owner, tier: Tier | None, **_provenance_and_note: object) -> None:
        self.chain_hash = GENESIS  # the hash of the case's last event, once it has one
        self.occurred_at_of: dict[int, datetime] = {}  # by version, corrections applied
        self.corrections: set[int] = set()  # versions that are corrections
        self.owner = owner
        self.tier = tier
        self.status = CaseStatus.OPEN
        self.pause_reason: PauseReason | None = None
        self.swarm: dict[str, SwarmMember] = {}

    def copy(self) -> Case:
        """An independent copy to decide on: changing it leaves this case untouched.

        Much cheaper than a deep copy: owners, members and enums are immutable values, so only
        the containers need copying.
        """
        clone = copy.copy(self)
        clone.swarm = dict(self.swarm)
        clone.occurred_at_of = dict(self.occurred_at_of)
        clone.corrections = set(self.corrections)
        clone._pending_events = list(self._pending_events)
        return clone

    # --- commands: each one is a rule (below, shared with CaseState) and its recording --------

    @classmethod
    def open(
        cls, case_id: str, owner: Owner, tier: Tier | None, note: str, provenance: Provenance
    ) -> Case:
        ((event_class, fields),) = open_changes(owner, tier, note)
        assert issubclass(event_class, CanInitAggregate)
        case = cls._create(
            event_class, id=case_id, chain_hash="", **fields, **provenance.as_event_kwargs()
        )
        case.chain_hash = _seal(cast(Case.Event, case._pending_events[-1]), GENESIS)
        return case

    def trigger_event(self, event_class: type[Any], **kwargs: Any) -> None:
        """The library's trigger, then the new event is sealed into the case's hash chain."""
        previous = self.chain_hash
        super().trigger_event(event_class, chain_hash="", **kwargs)
        self.chain_hash = _seal(cast(Case.Event, self._pending_events[-1]), previous)

    def record(self, changes: Sequence[Change], provenance: Provenance) -> bool:
        """Trigger the events a rule decided on; False when it decided on none."""
        for event_class, fields in changes:
            self.trigger_event(event_class, **fields, **provenance.as_event_kwargs())
        return bool(changes)

    def assign(self, owner: Owner, provenance: Provenance) -> bool:
        """Assign on an existing case: accepted without a record when it names the current owner."""
        return self.record(assign_changes(self, owner), provenance)

    def transfer(
        self,
        to_owner: Owner,
        reason: TransferReason,
        tier: Tier | None,
        note: str,
        eta: datetime | None,
        warm: bool,
        provenance: Provenance,
    ) -> bool:
        """Hand the case over. Returns False, recording nothing, when it already sits there."""
        return self.record(
            transfer_changes(self, to_owner, reason, tier, note, eta, warm), provenance
        )

    def join_swarm(
        self, agent_id: str, group_id: str, role: SwarmRole, note: str, provenance: Provenance
    ) -> bool:
        return self.record(join_swarm_changes(self, agent_id, group_id, role, note), provenance)

    def leave_swarm(self, agent_id: str, note: str, provenance: Provenance) -> bool:
        return self.record(leave_swarm_changes(self, agent_id, note), provenance)

    def pause(
        self, reason: PauseReason, until: datetime | None, note: str, provenance: Provenance
    ) -> bool:
        return self.record(pause_changes(self, reason, until, note), provenance)

    def resume(self, note: str, provenance: Provenance) -> bool:
        return self.record(resume_changes(self, note), provenance)

    def resolve(self, resolution_code: str, note: str, provenance: Provenance) -> bool:
        return self.record(resolve_changes(self, resolution_code, note), provenance)

    def reopen(self, reason: str, note: str, provenance: Provenance) -> bool:
        return self.record(reopen_changes(self, reason, note), provenance)

    def correct_occurrence(
        self, version: int, corrected_at: datetime, reason: str, note: str, provenance: Provenance
    ) -> bool:
        """Record when event ``version`` really happened. Returns False, recording nothing, when
        that is already its time. Allowed on a resolved case: audits come after resolution."""
        return self.record(
            correct_occurrence_changes(self, version, corrected_at, reason, note), provenance
        )

    def record_activity(self, activity: str, note: str, provenance: Provenance) -> bool:
        return self.record(record_activity_changes(self, activity, note), provenance)


Change = tuple[type[Case.Event], dict[str, Any]]
"""An event a rule decided on: its class and its own fields (provenance, version, time and
hash are added as it is recorded)."""


class CaseView(Protocol):
    """What the rules read of a case: the aggregate, or the import path's ``CaseState``."""

    @property
    def id(self) -> str: ...

    @property
    def version(self) -> int: ...

    owner: Owner
    tier: Tier | None
    status: CaseStatus
    pause_reason: PauseReason | None
    swarm: dict[str, SwarmMember]
    occurred_at_of: dict[int, datetime]
    corrections: set[int]


# --- the rules: check the case's state, then name the events to record --------------------------
#
# Each rule decides every event of its command from the state before the first of them, and
# raises before naming any when the command is refused, so a refused command records nothing.


def open_changes(owner: Owner, tier: Tier | None, note: str) -> list[Change]:
    return [(Case.Assigned, {"owner": owner, "tier": tier, "note": note})]


def assign_changes(case: CaseView, owner: Owner) -> list[Change]:
    _refuse_if_resolved(case, "assign")
    if owner == case.owner:
        return []
    raise RuleViolated(
        Rule.CASE_ALREADY_ASSIGNED,
        case.id,
        f"case {case.id!r} is already owned by {case.owner}; use Transfer to hand it over",
    )


def transfer_changes(
    case: CaseView,
    to_owner: Owner,
    reason: TransferReason,
    tier: Tier | None,
    note: str,
    eta: datetime | None,
    warm: bool,
) -> list[Change]:
    _refuse_if_resolved(case, "transfer")
    if to_owner == case.owner:
        return []
    changes: list[Change] = []
    new_member = case.swarm.get(to_owner.agent_id) if to_owner.agent_id else None
    if new_member is not None:
        # The owner cannot be in its own swarm: the expert's participation ends as they take over.
        changes.append(_participation_ended(new_member, SwarmExit.BECAME_OWNER, ""))
    changes.append(
        (
            Case.Transferred,
            {
                "from_owner": case.owner,
                "to_owner": to_owner,
                "reason": reason,
                "from_tier": case.tier,
                "to_tier": tier if tier is not None else case.tier,
                "note": note,
                "eta": eta,
                "warm": warm,
            },
        )
    )
    return changes


def join_swarm_changes(
    case: CaseView, agent_id: str, group_id: str, role: SwarmRole, note: str
) -> list[Change]:
    _refuse_if_resolved(case, "join the swarm of")
    if agent_id == case.owner.agent_id:
        raise RuleViolated(
            Rule.OWNER_CANNOT_JOIN_OWN_SWARM,
            case.id,
            f"{agent_id!r} owns case {case.id!r} and cannot also join its swarm",
        )
    current = case.swarm.get(agent_id)
    if current is not None:
        if current.role == role:
            return []
        raise RuleViolated(
            Rule.ALREADY_IN_SWARM,
            case.id,
            f"{agent_id!r} is already in the swarm of case {case.id!r} as "
            f"{current.role.value}; leave and rejoin to change role",
        )
    return [
        (
            Case.SwarmJoined,
            {"member_agent_id": agent_id, "member_group_id": group_id, "role": role, "note": note},
        )
    ]


def leave_swarm_changes(case: CaseView, agent_id: str, note: str) -> list[Change]:
    _refuse_if_resolved(case, "leave the swarm of")
    member = case.swarm.get(agent_id)
    if member is None:
        raise RuleViolated(
            Rule.NOT_IN_SWARM, case.id, f"{agent_id!r} is not in the swarm of case {case.id!r}"
        )
    return [_participation_ended(member, SwarmExit.LEFT, note)]


def pause_changes(
    case: CaseView, reason: PauseReason, until: datetime | None, note: str
) -> list[Change]:
    _refuse_if_resolved(case, "pause")
    if case.status is CaseStatus.PAUSED:
        assert case.pause_reason is not None
        raise RuleViolated(
            Rule.ALREADY_PAUSED,
            case.id,
            f"case {case.id!r} is already paused ({case.pause_reason.value})",
        )
    return [(Case.Paused, {"reason": reason, "until": until, "note": note})]


def resume_changes(case: CaseView, note: str) -> list[Change]:
    _refuse_if_resolved(case, "resume")
    if case.pause_reason is None:
        raise RuleViolated(Rule.NOT_PAUSED, case.id, f"case {case.id!r} is not paused")
    return [(Case.Resumed, {"reason": case.pause_reason, "note": note})]


def resolve_changes(case: CaseView, resolution_code: str, note: str) -> list[Change]:
    _refuse_if_resolved(case, "resolve")
    changes = [
        _participation_ended(member, SwarmExit.CASE_RESOLVED, "")
        for member in sorted(case.swarm.values(), key=lambda m: m.agent_id)
    ]
    changes.append(
        (Case.Resolved, {"resolver": case.owner, "resolution_code": resolution_code, "note": note})
    )
    return changes


def reopen_changes(case: CaseView, reason: str, note: str) -> list[Change]:
    if case.status is not CaseStatus.RESOLVED:
        raise RuleViolated(
            Rule.CASE_NOT_RESOLVED,
            case.id,
            f"case {case.id!r} is not resolved; only a resolved case can be reopened",
        )
    return [(Case.Reopened, {"reason": reason, "note": note})]


def correct_occurrence_changes(
    case: CaseView, version: int, corrected_at: datetime, reason: str, note: str
) -> list[Change]:
    if not 1 <= version <= case.version:
        raise RuleViolated(
            Rule.CORRECTED_EVENT_NOT_FOUND,
            case.id,
            f"case {case.id!r} has no version {version} to correct (it is at {case.version})",
        )
    if version in case.corrections:
        raise RuleViolated(
            Rule.CORRECTION_OF_A_CORRECTION,
            case.id,
            f"version {version} of case {case.id!r} is itself a correction; correct the "
            "original event again instead",
        )
    in_force = case.occurred_at_of[version]
    if corrected_at == in_force:
        return []
    return [
        (
            Case.OccurrenceCorrected,
            {
                "corrects_version": version,
                "original_occurred_at": in_force,
                "corrected_occurred_at": corrected_at,
                "reason": reason,
                "note": note,
            },
        )
    ]


def record_activity_changes(case: CaseView, activity: str, note: str) -> list[Change]:
    return [(Case.ActivityRecorded, {"activity": activity, "note": note})]


def _participation_ended(member: SwarmMember, cause: SwarmExit, note: str) -> Change:
    return (
        Case.SwarmLeft,
        {"member_agent_id": member.agent_id, "role": member.role, "cause": cause, "note": note},
    )


def _refuse_if_resolved(case: CaseView, verb: str) -> None:
    if case.status is CaseStatus.RESOLVED:
        raise RuleViolated(
            Rule.CASE_RESOLVED,
            case.id,
            f"cannot {verb} case {case.id!r}: it is resolved and takes only Reopen",
        )


def note_sealed(case: Any, version: int, chain_hash: str, occurred_at: datetime) -> None:
    """What every recorded event does to a case besides its own ``apply``."""
    case.chain_hash = chain_hash
    case.occurred_at_of.setdefault(version, occurred_at)


def _seal(event: Case.Event, previous_hash: str) -> str:
    """Set the event's ``chain_hash`` once, as it is created, from every field it holds.

    Hashing the constructed event (not the arguments given to it) covers fields with defaults
    too. The event is frozen for everyone else; this is the single write, before anyone sees it.
    """
    digest = state_link_hash(
        event.originator_id,
        event.originator_version,
        get_topic(type(event)),
        type(event).class_version,
        vars(event),
        previous_hash,
    )
    object.__setattr__(event, CHAIN_FIELD, digest)
    return digest


# --- deciding without the aggregate's objects (bulk imports) ------------------------------------


@dataclass(slots=True)
class SealedEvent:
    """A recorded event as plain data: the attributes a ``Case.Event`` of its class would hold
    (but ``originator_id`` and ``originator_version``, here ``case_id`` and ``version``), in the
    same order, sealed into the case's chain. Stored, it is byte for byte that event."""

    topic: str
    class_version: int
    case_id: str
    version: int
    state: dict[str, Any]


_IDENTITY_FIELDS = frozenset({"originator_id", "originator_version"})
_APPLIES_NOTHING = Case.Event.apply  # the library's: events that change no state keep it
_STATE_NAMES: dict[type, tuple[str, ...]] = {}
_CASE_TOPIC = get_topic(Case)


def _state_names(event_class: type[Case.Event]) -> tuple[str, ...]:
    names = _STATE_NAMES.get(event_class)
    if names is None:
        fields = dataclasses.fields(cast(Any, event_class))
        names = tuple(f.name for f in fields if f.name not in _IDENTITY_FIELDS)
        _STATE_NAMES[event_class] = names
    return names


class CaseState:
    """A case's current state as plain attributes, for deciding many commands fast.

    The same rules as the aggregate decide (``*_changes``); each event they name is sealed into
    the case's chain and applied by its own class's ``apply``, as the aggregate would. What
    differs is only what is not built: no event objects, no pending list.
    """

    __slots__ = (
        "chain_hash",
        "corrections",
        "id",
        "occurred_at_of",
        "owner",
        "pause_reason",
        "status",
        "swarm",
        "tier",
        "version",
    )

    def __init__(self, case_id: str, owner: Owner, tier: Tier | None) -> None:
        """A case before its first event: the state ``Case.__init__`` gives a new aggregate."""
        self.id = case_id
        self.version = 0
        self.chain_hash = GENESIS
        self.owner = owner
        self.tier = tier
        self.status = CaseStatus.OPEN
        self.pause_reason: PauseReason | None = None
        self.swarm: dict[str, SwarmMember] = {}
        self.occurred_at_of: dict[int, datetime] = {}
        self.corrections: set[int] = set()

    @classmethod
    def of(cls, case: Case) -> CaseState:
        state = cls(case.id, case.owner, case.tier)
        state.version = case.version
        state.chain_hash = case.chain_hash
        state.status = case.status
        state.pause_reason = case.pause_reason
        state.swarm = dict(case.swarm)
        state.occurred_at_of = dict(case.occurred_at_of)
        state.corrections = set(case.corrections)
        return state

    def copy(self) -> CaseState:
        """An independent copy to decide on (values are immutable; containers are copied)."""
        clone = copy.copy(self)
        clone.swarm = dict(self.swarm)
        clone.occurred_at_of = dict(self.occurred_at_of)
        clone.corrections = set(self.corrections)
        return clone

    @classmethod
    def open(
        cls, case_id: str, owner: Owner, tier: Tier | None, note: str, provenance: Provenance
    ) -> tuple[CaseState, list[SealedEvent]]:
        state = cls(case_id, owner, tier)
        return state, state.record(open_changes(owner, tier, note), provenance)

    def apply(self, event: Case.Event) -> None:
        """Bring the state past one stored event of its case, as the aggregate's ``mutate`` does."""
        if event.originator_id != self.id or event.originator_version != self.version + 1:
            raise ValueError(
                f"event {event.originator_id!r}@{event.originator_version} does not follow "
                f"{self.id!r}@{self.version}"
            )
        event.apply(cast(Any, self))
        self.version = event.originator_version
        note_sealed(self, event.originator_version, event.chain_hash, event.occurred_at)

    def record(self, changes: Sequence[Change], provenance: Provenance) -> list[SealedEvent]:
        sealed = []
        common = provenance.as_event_kwargs()
        for event_class, fields in changes:
            version = self.version + 1
            given = {**fields, **common, CHAIN_FIELD: "", "originator_topic": _CASE_TOPIC}
            given["timestamp"] = event_class.create_timestamp()
            state = {name: given[name] for name in _state_names(event_class)}
            topic = get_topic(event_class)
            class_version = event_class.class_version
            digest = state_link_hash(self.id, version, topic, class_version, state, self.chain_hash)
            state[CHAIN_FIELD] = digest
            if event_class.apply is not _APPLIES_NOTHING:
                as_event = SimpleNamespace(
                    originator_id=self.id, originator_version=version, **state
                )
                event_class.apply(cast(Any, as_event), cast(Any, self))
            self.version = version
            note_sealed(self, version, digest, state["occurred_at"])
            sealed.append(SealedEvent(topic, class_version, self.id, version, state))
        return sealed

"""The Case aggregate: the ownership history of one support case.

Each command method checks the rules against the case's current state first and only then triggers
events, so a refused command leaves the aggregate untouched. Events are past-tense facts nested in the
aggregate, in the style of the eventsourcing library; each carries a ``class_version`` so that a later
change of shape can be upcast instead of editing stored history.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, cast

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
            case.chain_hash = self.chain_hash
            case.occurred_at_of.setdefault(self.originator_version, self.occurred_at)
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

    # --- commands ---------------------------------------------------------------------------------

    @classmethod
    def open(
        cls, case_id: str, owner: Owner, tier: Tier | None, note: str, provenance: Provenance
    ) -> Case:
        case = cls._create(
            cls.Assigned,
            id=case_id,
            owner=owner,
            tier=tier,
            note=note,
            chain_hash="",
            **provenance.as_event_kwargs(),
        )
        case.chain_hash = _seal(cast(Case.Event, case._pending_events[-1]), GENESIS)
        return case

    def trigger_event(self, event_class: type[Any], **kwargs: Any) -> None:
        """The library's trigger, then the new event is sealed into the case's hash chain."""
        previous = self.chain_hash
        super().trigger_event(event_class, chain_hash="", **kwargs)
        self.chain_hash = _seal(cast(Case.Event, self._pending_events[-1]), previous)

    def assign(self, owner: Owner, provenance: Provenance) -> bool:
        """Assign on an existing case: accepted without a record when it names the current owner."""
        self._refuse_if_resolved("assign")
        if owner == self.owner:
            return False
        raise RuleViolated(
            Rule.CASE_ALREADY_ASSIGNED,
            self.id,
            f"case {self.id!r} is already owned by {self.owner}; use Transfer to hand it over",
        )

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
        self._refuse_if_resolved("transfer")
        if to_owner == self.owner:
            return False
        new_member = self.swarm.get(to_owner.agent_id) if to_owner.agent_id else None
        if new_member is not None:
            # The owner cannot be in its own swarm: the expert's participation ends as they take over.
            self._end_participation(new_member, SwarmExit.BECAME_OWNER, "", provenance)
        self.trigger_event(
            self.Transferred,
            from_owner=self.owner,
            to_owner=to_owner,
            reason=reason,
            from_tier=self.tier,
            to_tier=tier if tier is not None else self.tier,
            note=note,
            eta=eta,
            warm=warm,
            **provenance.as_event_kwargs(),
        )
        return True

    def join_swarm(
        self, agent_id: str, group_id: str, role: SwarmRole, note: str, provenance: Provenance
    ) -> bool:
        self._refuse_if_resolved("join the swarm of")
        if agent_id == self.owner.agent_id:
            raise RuleViolated(
                Rule.OWNER_CANNOT_JOIN_OWN_SWARM,
                self.id,
                f"{agent_id!r} owns case {self.id!r} and cannot also join its swarm",
            )
        current = self.swarm.get(agent_id)
        if current is not None:
            if current.role == role:
                return False
            raise RuleViolated(
                Rule.ALREADY_IN_SWARM,
                self.id,
                f"{agent_id!r} is already in the swarm of case {self.id!r} as "
                f"{current.role.value}; leave and rejoin to change role",
            )
        self.trigger_event(
            self.SwarmJoined,
            member_agent_id=agent_id,
            member_group_id=group_id,
            role=role,
            note=note,
            **provenance.as_event_kwargs(),
        )
        return True

    def leave_swarm(self, agent_id: str, note: str, provenance: Provenance) -> bool:
        self._refuse_if_resolved("leave the swarm of")
        member = self.swarm.get(agent_id)
        if member is None:
            raise RuleViolated(
                Rule.NOT_IN_SWARM, self.id, f"{agent_id!r} is not in the swarm of case {self.id!r}"
            )
        self._end_participation(member, SwarmExit.LEFT, note, provenance)
        return True

    def pause(
        self, reason: PauseReason, until: datetime | None, note: str, provenance: Provenance
    ) -> bool:
        self._refuse_if_resolved("pause")
        if self.status is CaseStatus.PAUSED:
            assert self.pause_reason is not None
            raise RuleViolated(
                Rule.ALREADY_PAUSED,
                self.id,
                f"case {self.id!r} is already paused ({self.pause_reason.value})",
            )
        self.trigger_event(
            self.Paused, reason=reason, until=until, note=note, **provenance.as_event_kwargs()
        )
        return True

    def resume(self, note: str, provenance: Provenance) -> bool:
        self._refuse_if_resolved("resume")
        if self.pause_reason is None:
            raise RuleViolated(Rule.NOT_PAUSED, self.id, f"case {self.id!r} is not paused")
        self.trigger_event(
            self.Resumed, reason=self.pause_reason, note=note, **provenance.as_event_kwargs()
        )
        return True

    def resolve(self, resolution_code: str, note: str, provenance: Provenance) -> bool:
        self._refuse_if_resolved("resolve")
        for member in sorted(self.swarm.values(), key=lambda m: m.agent_id):
            self._end_participation(member, SwarmExit.CASE_RESOLVED, "", provenance)
        self.trigger_event(
            self.Resolved,
            resolver=self.owner,
            resolution_code=resolution_code,
            note=note,
            **provenance.as_event_kwargs(),
        )
        return True

    def reopen(self, reason: str, note: str, provenance: Provenance) -> bool:
        if self.status is not CaseStatus.RESOLVED:
            raise RuleViolated(
                Rule.CASE_NOT_RESOLVED,
                self.id,
                f"case {self.id!r} is not resolved; only a resolved case can be reopened",
            )
        self.trigger_event(self.Reopened, reason=reason, note=note, **provenance.as_event_kwargs())
        return True

    def correct_occurrence(
        self, version: int, corrected_at: datetime, reason: str, note: str, provenance: Provenance
    ) -> bool:
        """Record when event ``version`` really happened. Returns False, recording nothing, when
        that is already its time. Allowed on a resolved case: audits come after resolution."""
        if not 1 <= version <= self.version:
            raise RuleViolated(
                Rule.CORRECTED_EVENT_NOT_FOUND,
                self.id,
                f"case {self.id!r} has no version {version} to correct (it is at {self.version})",
            )
        if version in self.corrections:
            raise RuleViolated(
                Rule.CORRECTION_OF_A_CORRECTION,
                self.id,
                f"version {version} of case {self.id!r} is itself a correction; correct the "
                "original event again instead",
            )
        in_force = self.occurred_at_of[version]
        if corrected_at == in_force:
            return False
        self.trigger_event(
            self.OccurrenceCorrected,
            corrects_version=version,
            original_occurred_at=in_force,
            corrected_occurred_at=corrected_at,
            reason=reason,
            note=note,
            **provenance.as_event_kwargs(),
        )
        return True

    def record_activity(self, activity: str, note: str, provenance: Provenance) -> bool:
        self.trigger_event(
            self.ActivityRecorded, activity=activity, note=note, **provenance.as_event_kwargs()
        )
        return True

    def _end_participation(
        self, member: SwarmMember, cause: SwarmExit, note: str, provenance: Provenance
    ) -> None:
        self.trigger_event(
            self.SwarmLeft,
            member_agent_id=member.agent_id,
            role=member.role,
            cause=cause,
            note=note,
            **provenance.as_event_kwargs(),
        )

    def _refuse_if_resolved(self, verb: str) -> None:
        if self.status is CaseStatus.RESOLVED:
            raise RuleViolated(
                Rule.CASE_RESOLVED,
                self.id,
                f"cannot {verb} case {self.id!r}: it is resolved and takes only Reopen",
            )


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

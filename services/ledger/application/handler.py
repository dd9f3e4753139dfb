"""The command handler: load the case, check idempotency and expected version, decide, append.

Many commands can be decided together and written in one transaction (``execute_batch``); each still
gets its own answer, and a refused command never stops its neighbours. Commands on the same case
apply in order onto the same aggregate.

Imports (``execute_import``) take the same steps with the same rules and the same answers, but
decide on a compact ``CaseState`` and hand the store each event's fields rather than an event
object: building the aggregate's objects cost more than everything else a command needs.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from services.ledger.application import commands as c
from services.ledger.application.errors import (
    ApplicationError,
    CommandIdReused,
    DeadlineExceeded,
    FieldViolation,
    InvalidCommand,
    StoreUnavailable,
    VersionConflict,
)
from services.ledger.application.ports import (
    AppendConflict,
    CommandRecord,
    EventStore,
    StoredCommand,
)
from services.ledger.application.results import CommandResult
from services.ledger.application.validation import Limits, violations_of
from services.ledger.domain.case import (
    Case,
    CaseState,
    CaseView,
    Change,
    Provenance,
    SealedEvent,
    assign_changes,
    correct_occurrence_changes,
    join_swarm_changes,
    leave_swarm_changes,
    pause_changes,
    record_activity_changes,
    reopen_changes,
    resolve_changes,
    resume_changes,
    transfer_changes,
)
from services.ledger.domain.errors import CaseNotFound, DomainError

Outcome = CommandResult | ApplicationError | DomainError
Clock = Callable[[], datetime]

# How often a command is decided afresh after losing a race to another writer. Races need a
# concurrent writer on the same case at the same instant, so a handful of attempts is plenty.
MAX_ATTEMPTS = 5


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class _Accepted:
    """A command decided in this attempt, waiting for its positions."""

    record: CommandRecord


@dataclass(slots=True)
class _SameAs:
    """A repeat, within one batch, of an earlier command of the same batch."""

    index: int


class _DecisionPath(Protocol):
    """How one attempt loads cases, applies a command to one, and writes what was decided."""

    def load(
        self, command_ids: set[str], case_ids: list[str]
    ) -> tuple[dict[str, StoredCommand], dict[str, Any]]: ...

    def decide(self, case: Any, command: c.Command, now: datetime) -> tuple[Any, list[Any]]:
        """The case after the command and the events it recorded; raises DomainError."""
        ...

    def write(
        self, events: list[Any], cases: dict[str, Any], records: list[CommandRecord]
    ) -> dict[tuple[str, int], int]: ...


class _OnAggregates:
    """The aggregate, its event objects, and the library's mapper (every command but imports)."""

    def __init__(self, store: EventStore) -> None:
        self._store = store

    def load(
        self, command_ids: set[str], case_ids: list[str]
    ) -> tuple[dict[str, StoredCommand], dict[str, Any]]:
        known, cases = self._store.load_for_commands(command_ids, case_ids)
        return known, dict(cases)

    def decide(self, case: Any, command: c.Command, now: datetime) -> tuple[Any, list[Any]]:
        pending_before = len(case.pending_events) if case is not None else 0
        try:
            case = decide(case, command, now)
        except DomainError:
            assert case is None or len(case.pending_events) == pending_before, (
                "a refused command must leave the case untouched"
            )
            raise
        return case, list(case.pending_events[pending_before:])

    def write(
        self, events: list[Any], cases: dict[str, Any], records: list[CommandRecord]
    ) -> dict[tuple[str, int], int]:
        changed = [case for case in cases.values() if case is not None and case.pending_events]
        return self._store.append(events, changed, records)


class _OnCaseStates:
    """Compact case states and sealed events, written as they are (imports)."""

    def __init__(self, store: EventStore) -> None:
        self._store = store

    def load(
        self, command_ids: set[str], case_ids: list[str]
    ) -> tuple[dict[str, StoredCommand], dict[str, Any]]:
        known, states = self._store.load_states_for_commands(command_ids, case_ids)
        return known, dict(states)

    def decide(self, case: Any, command: c.Command, now: datetime) -> tuple[Any, list[Any]]:
        return decide_state(case, command, now)

    def write(
        self, events: list[Any], cases: dict[str, Any], records: list[CommandRecord]
    ) -> dict[tuple[str, int], int]:
        changed = {event.case_id for event in events}
        states = [state for case_id, state in cases.items() if case_id in changed]
        return self._store.append_sealed(events, states, records)


class CaseCommandHandler:
    def __init__(self, store: EventStore, limits: Limits, clock: Clock = utc_now) -> None:
        self._store = store
        self.limits = limits
        self.clock = clock
        self._on_aggregates = _OnAggregates(store)
        self._on_case_states = _OnCaseStates(store)

    def execute(self, command: c.Command, deadline: float | None = None) -> CommandResult:
        """Run one command; raise its error if refused."""
        outcome = self.execute_batch([command], deadline)[0]
        if isinstance(outcome, CommandResult):
            return outcome
        raise outcome

    def execute_batch(
        self, commands: Sequence[c.Command], deadline: float | None = None
    ) -> list[Outcome]:
        """Run commands in order, writing every accepted one in a single transaction.

        ``deadline`` is a ``time.monotonic()`` instant: past it, nothing is written. The server's
        own import paths, which may use larger batches than a caller may send, use
        ``execute_import``.
        """
        self.check_batch_size(len(commands))
        return self._execute(commands, deadline, self._on_aggregates)

    def execute_import(self, commands: Sequence[c.Command]) -> list[Outcome]:
        """``execute_batch`` for the server's own import paths, of any size: the same checks,
        rules, answers and stored bytes, decided on compact case states."""
        return self._execute(commands, None, self._on_case_states)

    def _execute(
        self, commands: Sequence[c.Command], deadline: float | None, path: _DecisionPath
    ) -> list[Outcome]:
        try:
            return self._attempt(commands, deadline, path)
        except AppendConflict:
            # Someone else wrote one of these cases (or command_ids) meanwhile. Deciding each command
            # on its own keeps one contended case from failing the others.
            return [self._retry_alone(command, deadline) for command in commands]

    def check_batch_size(self, count: int) -> None:
        if count > self.limits.max_batch_commands:
            raise InvalidCommand(
                [
                    FieldViolation(
                        "commands",
                        f"holds {count} commands; at most {self.limits.max_batch_commands} fit "
                        "in one batch",
                    )
                ]
            )

    def _retry_alone(self, command: c.Command, deadline: float | None) -> Outcome:
        for attempt in range(MAX_ATTEMPTS):
            try:
                return self._attempt([command], deadline, self._on_aggregates)[0]
            except AppendConflict:
                if attempt > 0:
                    # A conflict usually means another writer moved the case, and the next load
                    # brings the cached copy up to date. Again and again, the cached copy itself
                    # may be wrong: ahead of a database restored, or failed over to a standby that
                    # missed commits. Decide on what the database holds.
                    self._store.forget_cached([command.case_id])
                # Jittered backoff, so writers racing on one case stop colliding in lockstep.
                time.sleep(random.uniform(0, 0.002 * 2**attempt))  # noqa: S311
        return StoreUnavailable(
            f"case {command.case_id!r} is under heavy concurrent change; retry with the same "
            "command_id"
        )

    def _attempt(
        self, commands: Sequence[c.Command], deadline: float | None, path: _DecisionPath
    ) -> list[Outcome]:
        now = self.clock()
        # Shape first: a malformed command never reaches the database, nor fails its neighbours.
        invalid = {
            index: InvalidCommand(violations)
            for index, command in enumerate(commands)
            if (violations := violations_of(command, self.limits, now))
        }
        valid = [command for index, command in enumerate(commands) if index not in invalid]
        known, cases = path.load(
            {command.command_id for command in valid},
            list(dict.fromkeys(command.case_id for command in valid)),
        )
        first_in_batch: dict[str, int] = {}
        decided: list[Outcome | _Accepted | _SameAs] = []
        # Events take positions in the order their commands were sent, across cases.
        events_in_order: list[Any] = []

        for index, command in enumerate(commands):
            if index in invalid:
                decided.append(invalid[index])
                continue
            decided.append(
                self._decide(
                    index, command, now, known, cases, first_in_batch, commands, path,
                    events_in_order,
                )
            )  # fmt: skip

        records = [d.record for d in decided if isinstance(d, _Accepted)]
        positions: dict[tuple[str, int], int] = {}
        if records:
            if deadline is not None and time.monotonic() >= deadline:
                error = DeadlineExceeded("the deadline passed before the command was written")
                return [error if isinstance(d, _Accepted | _SameAs) else d for d in decided]
            positions = path.write(events_in_order, cases, records)

        outcomes: list[Outcome] = []
        for d in decided:
            if isinstance(d, _Accepted):
                outcomes.append(self._result_of(d.record, positions, replayed=False))
            elif isinstance(d, _SameAs):
                earlier = outcomes[d.index]
                outcomes.append(
                    earlier.as_replayed() if isinstance(earlier, CommandResult) else earlier
                )
            else:
                outcomes.append(d)
        return outcomes

    def _decide(
        self,
        index: int,
        command: c.Command,
        now: datetime,
        known: dict[str, StoredCommand],
        cases: dict[str, Any],
        first_in_batch: dict[str, int],
        commands: Sequence[c.Command],
        path: _DecisionPath,
        events_in_order: list[Any],
    ) -> Outcome | _Accepted | _SameAs:
        fingerprint = command.fingerprint()
        stored = known.get(command.command_id)
        if stored is not None:
            if stored.record.fingerprint != fingerprint:
                return CommandIdReused(
                    command.command_id, stored.record.case_id, stored.record.kind
                )
            return self._result_of(stored.record, {}, replayed=True, position=stored.position)
        earlier = first_in_batch.get(command.command_id)
        if earlier is not None:
            if commands[earlier].fingerprint() != fingerprint:
                original = commands[earlier]
                return CommandIdReused(command.command_id, original.case_id, original.kind)
            return _SameAs(earlier)

        case = cases[command.case_id]
        version_before = case.version if case is not None else 0
        if command.expected_version is not None and command.expected_version != version_before:
            return VersionConflict(command.case_id, command.expected_version, version_before)

        try:
            case, new_events = path.decide(case, command, now)
        except DomainError as refusal:
            # Its traceback would keep this frame and its callers' alive, whose locals hold the
            # refusal: a cycle only the collector frees, and imports freeze survivors (bootstrap).
            refusal.__traceback__ = None
            return refusal
        cases[command.case_id] = case
        events_in_order += new_events
        first_in_batch[command.command_id] = index
        return _Accepted(
            CommandRecord(
                command_id=command.command_id,
                case_id=command.case_id,
                kind=command.kind,
                fingerprint=fingerprint,
                version_before=version_before,
                version_after=case.version,
            )
        )

    def _result_of(
        self,
        record: CommandRecord,
        positions: dict[tuple[str, int], int],
        *,
        replayed: bool,
        position: int | None = None,
    ) -> CommandResult:
        if position is None:
            key = (record.case_id, record.version_after)
            position = positions.get(key)
            if position is None:  # a no-op: point at the case's last event, written earlier
                position = self._store.position_of(*key)
        return CommandResult(
            case_id=record.case_id,
            command_id=record.command_id,
            version=record.version_after,
            position=position,
            events_recorded=record.events_recorded,
            replayed=replayed,
        )


def provenance_of(command: c.Command, now: datetime) -> Provenance:
    return Provenance(
        occurred_at=command.occurred_at or now,
        actor=command.actor,
        command_id=command.command_id,
        trace_parent=command.trace_parent,
    )


def decide(case: Case | None, command: c.Command, now: datetime) -> Case:
    """Apply one command to the case (``None`` when it does not exist yet); raise if a rule forbids."""
    provenance = provenance_of(command, now)
    if case is None:
        if isinstance(command, c.Assign):
            return Case.open(command.case_id, command.owner, command.tier, command.note, provenance)
        raise CaseNotFound(command.case_id)
    case.record(changes_of(case, command), provenance)
    return case


def decide_state(
    state: CaseState | None, command: c.Command, now: datetime
) -> tuple[CaseState, list[SealedEvent]]:
    """``decide`` on a compact case state: the state after the command and its sealed events."""
    provenance = provenance_of(command, now)
    if state is None:
        if isinstance(command, c.Assign):
            return CaseState.open(
                command.case_id, command.owner, command.tier, command.note, provenance
            )
        raise CaseNotFound(command.case_id)
    return state, state.record(changes_of(state, command), provenance)


def changes_of(case: CaseView, command: c.Command) -> list[Change]:
    """The events the domain's rule for this command decides on (raises if the rule forbids)."""
    match command:
        case c.Assign():
            return assign_changes(case, command.owner)
        case c.Transfer():
            return transfer_changes(
                case,
                command.to_owner,
                command.reason,
                command.tier,
                command.note,
                command.eta,
                command.warm,
            )
        case c.JoinSwarm():
            return join_swarm_changes(
                case, command.agent_id, command.group_id, command.role, command.note
            )
        case c.LeaveSwarm():
            return leave_swarm_changes(case, command.agent_id, command.note)
        case c.Pause():
            return pause_changes(case, command.reason, command.until, command.note)
        case c.Resume():
            return resume_changes(case, command.note)
        case c.Resolve():
            return resolve_changes(case, command.resolution_code, command.note)
        case c.Reopen():
            return reopen_changes(case, command.reason, command.note)
        case c.RecordActivity():
            return record_activity_changes(case, command.activity, command.note)
        case c.CorrectOccurrence():
            return correct_occurrence_changes(
                case,
                command.corrects_version,
                command.corrected_occurred_at,
                command.reason,
                command.note,
            )
        case _:
            raise TypeError(f"no decision for {command.kind}")

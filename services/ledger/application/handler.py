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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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


@dataclass(slots=True)
class _Plan:
    """What one attempt decided, before it is written: the decision of each command, the new
    events in the order they take positions, every case as the batch leaves it, the records
    to store, and (once written) the events' positions."""

    decided: list[Outcome | _Accepted | _SameAs | _AcceptedAhead]
    events: list[Any]
    cases: dict[str, Any]
    records: list[CommandRecord]
    positions: dict[tuple[str, int], int] | None = None

    def changed_cases(self) -> dict[str, Any]:
        """The cases this plan writes events for, in their new state."""
        return {event.case_id: self.cases[event.case_id] for event in self.events}

    def accepted(self) -> dict[str, CommandRecord]:
        return {record.command_id: record for record in self.records}


@dataclass(slots=True)
class _AcceptedAhead:
    """A repeat of a command the batch ahead accepted (being written while this one is
    decided): answered as a replay of that batch's record once it is written."""

    record: CommandRecord
    ahead: _Plan


class _DecisionPath(Protocol):
    """How one attempt loads cases, applies a command to one, and writes what was decided."""

    def load(
        self, command_ids: set[str], case_ids: list[str], ahead: Mapping[str, Any]
    ) -> tuple[dict[str, StoredCommand], dict[str, Any]]:
        """Stored commands among ``command_ids``, and each case's state: ``ahead``'s (copied)
        where it has one, else the stored one."""
        ...

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
        self, command_ids: set[str], case_ids: list[str], ahead: Mapping[str, Any]
    ) -> tuple[dict[str, StoredCommand], dict[str, Any]]:
        assert not ahead, "only imports decide ahead of a write"
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
        self, command_ids: set[str], case_ids: list[str], ahead: Mapping[str, Any]
    ) -> tuple[dict[str, StoredCommand], dict[str, Any]]:
        known, states = self._store.load_states_for_commands(command_ids, case_ids, ahead)
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

    def execute_import_stream(
        self, batches: Iterable[Sequence[c.Command]]
    ) -> Iterator[list[Outcome]]:
        """``execute_import`` of each batch in turn, yielding each batch's outcomes in order.

        Each batch is decided while the one before it is written (in a writer thread), so the
        database's work and the wait for its commit overlap the next batch's Python work. It is
        decided on the states the batch ahead leaves, and answers a repeat of a command that
        batch accepted as the replay it will be; batches are written one at a time, in order.
        If the batch ahead is not written as decided (another writer moved one of its cases, and
        its commands were retried alone), the decisions that took it for granted are dropped and
        the batch is decided again. If writing fails outright, the error is raised and nothing
        after that batch is written.
        """
        path = self._on_case_states
        pending: tuple[Sequence[c.Command], _Plan, Future[None]] | None = None
        with ThreadPoolExecutor(1, thread_name_prefix="import-writer") as writer:
            try:
                for commands in batches:
                    plan = self._plan(commands, path, pending[1] if pending is not None else None)
                    done: list[Outcome] | None = None
                    if pending is not None:
                        ahead, pending = pending, None
                        done, as_decided = self._settled(*ahead)
                        if not as_decided:
                            plan = self._plan(commands, path)
                    pending = (commands, plan, writer.submit(self._write, plan, path))
                    if done is not None:
                        yield done
            except Exception:
                # Reading or deciding a later batch failed: what is being written is still
                # answered first, as it would have been one batch after the other.
                if pending is not None:
                    yield self._settled(*pending)[0]
                raise
            if pending is not None:
                yield self._settled(*pending)[0]

    def _settled(
        self, commands: Sequence[c.Command], plan: _Plan, written: Future[None]
    ) -> tuple[list[Outcome], bool]:
        """The outcomes of a batch once its write ends, and whether it was written as decided."""
        try:
            written.result()
        except AppendConflict:
            return [self._retry_alone(command, None) for command in commands], False
        return self._outcomes(plan), True

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
        plan = self._plan(commands, path)
        if plan.records and deadline is not None and time.monotonic() >= deadline:
            error = DeadlineExceeded("the deadline passed before the command was written")
            return [
                error if isinstance(d, _Accepted | _SameAs | _AcceptedAhead) else d
                for d in plan.decided
            ]
        self._write(plan, path)
        return self._outcomes(plan)

    def _plan(
        self, commands: Sequence[c.Command], path: _DecisionPath, ahead: _Plan | None = None
    ) -> _Plan:
        """Decide every command; ``ahead`` is a batch decided before and not yet written, whose
        outcome these decisions take for granted."""
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
            ahead.changed_cases() if ahead is not None else {},
        )
        plan = _Plan([], [], cases, [])
        first_in_batch: dict[str, int] = {}
        accepted_ahead = ahead.accepted() if ahead is not None else {}
        for index, command in enumerate(commands):
            if index in invalid:
                plan.decided.append(invalid[index])
                continue
            plan.decided.append(
                self._decide(
                    index, command, now, known, accepted_ahead, ahead, first_in_batch, commands,
                    path, plan,
                )
            )  # fmt: skip
        plan.records = [d.record for d in plan.decided if isinstance(d, _Accepted)]
        return plan

    @staticmethod
    def _write(plan: _Plan, path: _DecisionPath) -> None:
        plan.positions = path.write(plan.events, plan.cases, plan.records) if plan.records else {}

    def _outcomes(self, plan: _Plan) -> list[Outcome]:
        """The answers of a written plan."""
        assert plan.positions is not None
        outcomes: list[Outcome] = []
        for d in plan.decided:
            if isinstance(d, _Accepted):
                outcomes.append(self._result_of(d.record, plan.positions, replayed=False))
            elif isinstance(d, _SameAs):
                earlier = outcomes[d.index]
                outcomes.append(
                    earlier.as_replayed() if isinstance(earlier, CommandResult) else earlier
                )
            elif isinstance(d, _AcceptedAhead):
                assert d.ahead.positions is not None, "the batch ahead is written first"
                outcomes.append(self._result_of(d.record, d.ahead.positions, replayed=True))
            else:
                outcomes.append(d)
        return outcomes

    def _decide(
        self,
        index: int,
        command: c.Command,
        now: datetime,
        known: dict[str, StoredCommand],
        accepted_ahead: dict[str, CommandRecord],
        ahead: _Plan | None,
        first_in_batch: dict[str, int],
        commands: Sequence[c.Command],
        path: _DecisionPath,
        plan: _Plan,
    ) -> Outcome | _Accepted | _SameAs | _AcceptedAhead:
        fingerprint = command.fingerprint()
        stored = known.get(command.command_id)
        if stored is not None:
            if stored.record.fingerprint != fingerprint:
                return CommandIdReused(
                    command.command_id, stored.record.case_id, stored.record.kind
                )
            return self._result_of(stored.record, {}, replayed=True, position=stored.position)
        record_ahead = accepted_ahead.get(command.command_id)
        if record_ahead is not None:  # as if stored: the batch ahead is written before this one
            assert ahead is not None
            if record_ahead.fingerprint != fingerprint:
                return CommandIdReused(command.command_id, record_ahead.case_id, record_ahead.kind)
            return _AcceptedAhead(record_ahead, ahead)
        earlier = first_in_batch.get(command.command_id)
        if earlier is not None:
            if commands[earlier].fingerprint() != fingerprint:
                original = commands[earlier]
                return CommandIdReused(command.command_id, original.case_id, original.kind)
            return _SameAs(earlier)

        case = plan.cases[command.case_id]
        version_before = case.version if case is not None else 0
        if command.expected_version is not None and command.expected_version != version_before:
            return VersionConflict(command.case_id, command.expected_version, version_before)

        try:
            case, new_events = path.decide(case, command, now)
        except DomainError as refusal:
            return refusal
        plan.cases[command.case_id] = case
        # Events take positions in the order their commands were sent, across cases.
        plan.events += new_events
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

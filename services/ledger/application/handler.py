"""The command handler: load the case, check idempotency and expected version, decide, append.

Many commands can be decided together and written in one transaction (``execute_batch``); each still
gets its own answer, and a refused command never stops its neighbours. Commands on the same case
apply in order onto the same aggregate.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

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
from services.ledger.domain.case import Case, Provenance
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


class CaseCommandHandler:
    def __init__(self, store: EventStore, limits: Limits, clock: Clock = utc_now) -> None:
        self._store = store
        self.limits = limits
        self.clock = clock

    def execute(self, command: c.Command, deadline: float | None = None) -> CommandResult:
        """Run one command; raise its error if refused."""
        outcome = self.execute_batch([command], deadline)[0]
        if isinstance(outcome, CommandResult):
            return outcome
        raise outcome

    def execute_batch(
        self,
        commands: Sequence[c.Command],
        deadline: float | None = None,
        *,
        enforce_size: bool = True,
    ) -> list[Outcome]:
        """Run commands in order, writing every accepted one in a single transaction.

        ``deadline`` is a ``time.monotonic()`` instant: past it, nothing is written.
        ``enforce_size`` false lets the server's own import path use larger batches than a
        caller may send.
        """
        if enforce_size:
            self.check_batch_size(len(commands))
        try:
            return self._attempt(commands, deadline)
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
                return self._attempt([command], deadline)[0]
            except AppendConflict:
                # Jittered backoff, so writers racing on one case stop colliding in lockstep.
                time.sleep(random.uniform(0, 0.002 * 2**attempt))  # noqa: S311
        return StoreUnavailable(
            f"case {command.case_id!r} is under heavy concurrent change; retry with the same "
            "command_id"
        )

    def _attempt(self, commands: Sequence[c.Command], deadline: float | None) -> list[Outcome]:
        now = self.clock()
        # Shape first: a malformed command never reaches the database, nor fails its neighbours.
        invalid = {
            index: InvalidCommand(violations)
            for index, command in enumerate(commands)
            if (violations := violations_of(command, self.limits, now))
        }
        valid = [command for index, command in enumerate(commands) if index not in invalid]
        known, cases = self._store.load_for_commands(
            {command.command_id for command in valid}, (command.case_id for command in valid)
        )
        first_in_batch: dict[str, int] = {}
        decided: list[Outcome | _Accepted | _SameAs] = []
        events_in_order: list[Case.Event] = []

        for index, command in enumerate(commands):
            if index in invalid:
                decided.append(invalid[index])
                continue
            decided.append(
                self._decide(index, command, now, known, cases, first_in_batch, commands)
            )
            accepted = decided[-1]
            if isinstance(accepted, _Accepted) and accepted.record.events_recorded:
                case = cases[command.case_id]
                assert case is not None
                new_events = case.pending_events[-accepted.record.events_recorded :]
                events_in_order += cast(list[Case.Event], new_events)

        records = [d.record for d in decided if isinstance(d, _Accepted)]
        positions: dict[tuple[str, int], int] = {}
        if records:
            if deadline is not None and time.monotonic() >= deadline:
                error = DeadlineExceeded("the deadline passed before the command was written")
                return [error if isinstance(d, _Accepted | _SameAs) else d for d in decided]
            changed = [case for case in cases.values() if case is not None and case.pending_events]
            # Events take positions in the order their commands were sent, across cases.
            positions = self._store.append(events_in_order, changed, records)

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
        cases: dict[str, Case | None],
        first_in_batch: dict[str, int],
        commands: Sequence[c.Command],
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

        pending_before = len(case.pending_events) if case is not None else 0
        try:
            case = decide(case, command, now)
        except DomainError as refusal:
            assert case is None or len(case.pending_events) == pending_before, (
                "a refused command must leave the case untouched"
            )
            return refusal
        cases[command.case_id] = case
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


def decide(case: Case | None, command: c.Command, now: datetime) -> Case:
    """Apply one command to the case (``None`` when it does not exist yet); raise if a rule forbids."""
    provenance = Provenance(
        occurred_at=command.occurred_at or now,
        actor=command.actor,
        command_id=command.command_id,
        trace_parent=command.trace_parent,
    )
    if case is None:
        if isinstance(command, c.Assign):
            return Case.open(command.case_id, command.owner, command.tier, command.note, provenance)
        raise CaseNotFound(command.case_id)
    match command:
        case c.Assign():
            case.assign(command.owner, provenance)
        case c.Transfer():
            case.transfer(
                command.to_owner,
                command.reason,
                command.tier,
                command.note,
                command.eta,
                command.warm,
                provenance,
            )
        case c.JoinSwarm():
            case.join_swarm(
                command.agent_id, command.group_id, command.role, command.note, provenance
            )
        case c.LeaveSwarm():
            case.leave_swarm(command.agent_id, command.note, provenance)
        case c.Pause():
            case.pause(command.reason, command.until, command.note, provenance)
        case c.Resume():
            case.resume(command.note, provenance)
        case c.Resolve():
            case.resolve(command.resolution_code, command.note, provenance)
        case c.Reopen():
            case.reopen(command.reason, command.note, provenance)
        case c.RecordActivity():
            case.record_activity(command.activity, command.note, provenance)
        case c.CorrectOccurrence():
            case.correct_occurrence(
                command.corrects_version,
                command.corrected_occurred_at,
                command.reason,
                command.note,
                provenance,
            )
        case _:
            raise TypeError(f"no decision for {command.kind}")
    return case

"""The projector: follows the ledger's global order and keeps every read model current.

One pass updates all read models. Each batch (up to ``batch_size`` events, fewer when the ledger
is quiet, so live lag stays low) is one read-model transaction that also moves the tracking
position: killed at any instant, the projector restarts from the last committed position and the
read models equal a clean rebuild — nothing is counted twice, because every stored row is a
function of its case's events (rows are overwritten, never incremented). Each event is applied to
its case's in-memory state (``casestate``), and only rows that differ from the committed ones are
written; a case not in memory is loaded from the ledger and its rows replaced whole.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from services.ledger.application.ports import RecordedEvent
from services.ledger.domain.case import Case
from services.ledger.infrastructure.store import EventsourcingStore
from services.projector import readmodels as rm
from services.projector.casestate import CaseState, CaseStates
from services.projector.credit import CreditPolicy, chosen_policies
from services.projector.database import ReadModelDatabase
from services.projector.gcpacing import FrozenLongLived

log = logging.getLogger(__name__)
TRACKING_NAME = "readmodels"


@dataclass(frozen=True, slots=True)
class ProjectorStatus:
    position: int
    head: int
    batches: int
    events: int


class ProjectorObserver(Protocol):
    def batch_applied(
        self,
        batch: Sequence[RecordedEvent],
        histories: Mapping[str, Sequence[Case.Event]],
        seconds: float,
    ) -> None:
        """Told after each committed batch: its events, the touched cases' whole histories (the
        batch's events included) and how long applying and committing took."""


class Projector:
    def __init__(
        self,
        events: EventsourcingStore,
        database: ReadModelDatabase,
        policies: Sequence[CreditPolicy],
        batch_size: int = 1000,
        cache_cases: int = 5_000,
        generation: str = "",
        observer: ProjectorObserver | None = None,
        gc_pacing: FrozenLongLived | None = None,
    ) -> None:
        self._events = events
        self._gc_pacing = gc_pacing
        self._observer = observer  # traces and metrics
        self._db = database
        self._policies = chosen_policies(policies)
        self._batch_size = batch_size
        self._cases = CaseStates(cache_cases)
        self._generation = generation
        self._position_changed = threading.Condition()
        self.batches = 0
        self.events_projected = 0
        with self._db.transaction(write=True) as cursor:
            rm.create_tables(cursor, generation)
            self.position = rm.read_position(cursor, TRACKING_NAME, generation)

    def run_once(self, stop_at: int | None = None) -> int:
        """Project the next batch; return how many events it held (0: caught up)."""
        limit = self._batch_size
        if stop_at is not None:
            limit = min(limit, stop_at - self.position)
            if limit <= 0:
                return 0
        batch = self._events.read_all(self.position, limit)
        if not batch:
            return 0
        self._apply(batch)
        return len(batch)

    def _apply(self, batch: list[RecordedEvent]) -> None:
        started = time.perf_counter()
        last = batch[-1].position
        touched: dict[str, CaseState] = {}
        try:
            for recorded in batch:
                case_id = recorded.event.originator_id
                state = touched.get(case_id)
                if state is None:
                    state = touched[case_id] = self._state_before(recorded)
                self._apply_event(state, recorded)
            changes = rm.RowChanges()
            rows = {case_id: state.rows(self._policies) for case_id, state in touched.items()}
            for case_id, state in touched.items():
                changes.add(case_id, state.stored, rows[case_id])
            with (
                self._db.transaction(write=True) as cursor,
                cursor.pipeline(changes.most_rows()),
            ):
                changes.write(cursor, self._generation)
                rm.write_position(cursor, TRACKING_NAME, last, self._generation)
        except BaseException:
            # The states may hold events that were never committed: start afresh from the ledger.
            self._cases.clear()
            raise
        for case_id, state in touched.items():
            state.stored = rows[case_id]
            self._cases.put(state)
        with self._position_changed:
            self.position = last
            self.batches += 1
            self.events_projected += len(batch)
            self._position_changed.notify_all()
        if self._observer is not None:
            histories = {case_id: state.events for case_id, state in touched.items()}
            self._observer.batch_applied(batch, histories, time.perf_counter() - started)
        if self._gc_pacing is not None:
            self._gc_pacing.after_batch()

    def _apply_event(self, state: CaseState, recorded: RecordedEvent) -> None:
        """The one place an event enters the read models' state (rows are written per batch)."""
        state.apply(recorded.event, recorded.position)

    def _state_before(self, first_new: RecordedEvent) -> CaseState:
        """The case as it stood just before ``first_new``: from memory, else from the ledger."""
        event = first_new.event
        if event.originator_version == 1:
            return CaseState.opening(event.originator_id)
        state = self._cases.get(event.originator_id)
        if state is not None and state.version == event.originator_version - 1:
            return state
        earlier = self._events.read_case(event.originator_id, 0, event.originator_version - 1)
        return CaseState(event.originator_id, [r.event for r in earlier], stored=None)

    def catch_up(self, stop_at: int | None = None) -> int:
        """Project until nothing is left (or ``stop_at`` is reached); return the events projected."""
        total = 0
        while n := self.run_once(stop_at):
            total += n
        return total

    def run(self, stop: threading.Event, idle_wait: float = 0.2) -> None:
        """Follow the ledger until ``stop`` is set."""
        while not stop.is_set():
            seen = self._events.append_count
            try:
                if self.run_once():
                    continue
            except Exception:
                log.exception("projector batch failed; retrying from the last committed position")
                self._cases.clear()
                stop.wait(1.0)
                continue
            self._events.wait_for_append(seen, idle_wait)

    def wait_for_position(self, position: int, timeout: float) -> bool:
        """Block until the read models include ``position`` (True) or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        with self._position_changed:
            while self.position < position:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._position_changed.wait(remaining)
        return True

    def status(self) -> ProjectorStatus:
        return ProjectorStatus(
            self.position, self._events.max_position(), self.batches, self.events_projected
        )


def rebuild(
    events: EventsourcingStore,
    database: ReadModelDatabase,
    policies: Sequence[CreditPolicy],
    batch_size: int = 1000,
    stop_at: int | None = None,
    gc_pacing: FrozenLongLived | None = None,
) -> int:
    """Replay from position 0 into fresh tables, then swap them in one transaction."""
    staging = "_rebuild"
    with database.transaction(write=True) as cursor:
        rm.drop_tables(cursor, staging)
    projector = Projector(
        events, database, policies, batch_size, generation=staging, gc_pacing=gc_pacing
    )
    projected = projector.catch_up(stop_at)
    with database.transaction(write=True) as cursor:
        rm.drop_tables(cursor)
        rm.rename_generation(cursor, staging, "", postgres=database.is_postgres)
    return projected

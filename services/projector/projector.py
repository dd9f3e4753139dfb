"""The projector: follows the ledger's global order and keeps every read model current.

One pass updates all read models. Each batch (up to ``batch_size`` events, fewer when the ledger
is quiet, so live lag stays low) is one read-model transaction that also moves the tracking
position: killed at any instant, the projector restarts from the last committed position and the
read models equal a clean rebuild — nothing is counted twice, because a case's rows are always
replaced whole, never incremented.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from services.ledger.application.ports import RecordedEvent
from services.ledger.domain.case import Case
from services.ledger.infrastructure.store import EventsourcingStore
from services.projector import readmodels as rm
from services.projector.credit import CreditPolicy
from services.projector.database import ReadModelDatabase

log = logging.getLogger(__name__)
TRACKING_NAME = "readmodels"


@dataclass(frozen=True, slots=True)
class ProjectorStatus:
    position: int
    head: int
    batches: int
    events: int


class CaseHistoryCache:
    """Recent cases' events, so a busy case is not re-read from the ledger for every batch.

    Bounded (least recently used cases leave first) to keep memory flat on any history length.
    A few thousand cases cover the cases that are open at once in real traffic; a miss costs one
    indexed read of that case's events.
    """

    def __init__(self, max_cases: int) -> None:
        self._max_cases = max_cases
        self._cases: OrderedDict[str, list[Case.Event]] = OrderedDict()

    def get(self, case_id: str) -> list[Case.Event] | None:
        events = self._cases.get(case_id)
        if events is not None:
            self._cases.move_to_end(case_id)
        return events

    def put(self, case_id: str, events: list[Case.Event]) -> None:
        self._cases[case_id] = events
        self._cases.move_to_end(case_id)
        while len(self._cases) > self._max_cases:
            self._cases.popitem(last=False)

    def clear(self) -> None:
        self._cases.clear()


class Projector:
    def __init__(
        self,
        events: EventsourcingStore,
        database: ReadModelDatabase,
        policies: Sequence[CreditPolicy],
        batch_size: int = 1000,
        cache_cases: int = 5_000,
        generation: str = "",
    ) -> None:
        self._events = events
        self._db = database
        self._policies = list(policies)
        self._batch_size = batch_size
        self._cache = CaseHistoryCache(cache_cases)
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
        last = batch[-1].position
        touched: dict[str, list[Case.Event]] = {}
        credit_changes: set[str] = set()
        for recorded in batch:
            event = recorded.event
            case_id = event.originator_id
            if case_id not in touched:
                touched[case_id] = self._history_before(case_id, recorded)
            history = touched[case_id]
            if _may_change_credit(event, history):
                credit_changes.add(case_id)
            history.append(event)
        last_position = {r.event.originator_id: r.position for r in batch}
        projected = [
            rm.case_rows(
                case_id,
                events,
                last_position[case_id],
                self._policies,
                with_credit=case_id in credit_changes,
            )
            for case_id, events in touched.items()
        ]
        with self._db.transaction(write=True) as cursor:
            rm.replace_cases(cursor, projected, self._generation)
            rm.write_position(cursor, TRACKING_NAME, last, self._generation)
        for case_id, events in touched.items():
            self._cache.put(case_id, events)
        with self._position_changed:
            self.position = last
            self.batches += 1
            self.events_projected += len(batch)
            self._position_changed.notify_all()

    def _history_before(self, case_id: str, first_new: RecordedEvent) -> list[Case.Event]:
        """The case's events before ``first_new``, from the cache or the ledger."""
        if first_new.event.originator_version == 1:
            return []
        cached = self._cache.get(case_id)
        if cached is not None and cached[-1].originator_version == (
            first_new.event.originator_version - 1
        ):
            return list(cached)
        earlier = self._events.read_case(case_id, 0, first_new.event.originator_version - 1)
        return [r.event for r in earlier]

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
                self._cache.clear()
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


def _may_change_credit(event: Case.Event, earlier: list[Case.Event]) -> bool:
    """Credit depends on history up to each resolution: only a resolution, a reopening, or an
    event placed (in event time) before something already seen can change it."""
    if isinstance(event, Case.Resolved | Case.Reopened | Case.OccurrenceCorrected) or not earlier:
        return True
    return event.occurred_at < max(e.occurred_at for e in earlier)


def rebuild(
    events: EventsourcingStore,
    database: ReadModelDatabase,
    policies: Sequence[CreditPolicy],
    batch_size: int = 1000,
    stop_at: int | None = None,
) -> int:
    """Replay from position 0 into fresh tables, then swap them in one transaction."""
    staging = "_rebuild"
    with database.transaction(write=True) as cursor:
        rm.drop_tables(cursor, staging)
    projector = Projector(events, database, policies, batch_size, generation=staging)
    projected = projector.catch_up(stop_at)
    with database.transaction(write=True) as cursor:
        rm.drop_tables(cursor)
        rm.rename_generation(cursor, staging, "", postgres=database.is_postgres)
    return projected

"""Reading the ledger back: one case, the global order, and a live feed of it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from services.ledger.application.errors import InvalidCommand
from services.ledger.application.ports import EventStore, RecordedEvent
from services.ledger.application.validation import Limits, id_violations
from services.ledger.domain.errors import CaseNotFound


class LedgerReader:
    def __init__(
        self,
        store: EventStore,
        limits: Limits,
        max_limit: int = 1000,
        poll_seconds: float = 0.5,
    ) -> None:
        self._store = store
        self._limits = limits
        self._max_limit = max_limit
        self._poll_seconds = poll_seconds
        self.stopping = threading.Event()

    def _limit(self, requested: int) -> int:
        return self._max_limit if requested <= 0 else min(requested, self._max_limit)

    def read_case(self, case_id: str, after_version: int, limit: int) -> list[RecordedEvent]:
        violations = id_violations("case_id", case_id, self._limits)
        if violations:
            raise InvalidCommand(violations)
        events = self._store.read_case(case_id, after_version, self._limit(limit))
        if not events and (after_version <= 0 or not self._store.read_case(case_id, 0, 1)):
            raise CaseNotFound(case_id)
        return events

    def read_all(self, after_position: int, limit: int) -> tuple[list[RecordedEvent], int]:
        head = self._store.max_position()
        return self._store.read_all(after_position, self._limit(limit)), head

    def follow(
        self, after_position: int, is_active: Callable[[], bool]
    ) -> Iterator[list[RecordedEvent]]:
        """Yield batches of events in global order after ``after_position``, forever.

        Ends when ``is_active`` turns false or the reader is stopping (server shutdown). Positions
        are handed out under the store's write lock and commit in order, so reading strictly after
        the last seen position never passes over an event that commits late.
        """
        position = after_position
        while is_active() and not self.stopping.is_set():
            seen = self._store.append_count
            events = self._store.read_all(position, self._max_limit)
            if events:
                position = events[-1].position
                yield events
            else:
                self._store.wait_for_append(seen, self._poll_seconds)

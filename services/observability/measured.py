"""The event store, measured: append latency and events appended, without touching the store."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from services.ledger.application.ports import CommandRecord, EventStore
from services.ledger.domain.case import Case
from services.observability.metrics import Metrics


class MeasuredEventStore:
    """Wraps an EventStore; every other method passes straight through."""

    def __init__(self, store: EventStore, metrics: Metrics) -> None:
        self._store = store
        self._metrics = metrics

    def append(
        self, events: Sequence[Case.Event], cases: Sequence[Case], records: Sequence[CommandRecord]
    ) -> dict[tuple[str, int], int]:
        started = time.perf_counter()
        positions = self._store.append(events, cases, records)
        self._metrics.append_seconds.observe(time.perf_counter() - started)
        counts: dict[str, int] = {}
        for event in events:
            name = type(event).__name__
            counts[name] = counts.get(name, 0) + 1
        for name, count in counts.items():
            self._metrics.events_appended.labels(event=name).inc(count)
        return positions

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

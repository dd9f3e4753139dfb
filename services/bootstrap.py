"""The composition root: the only place that knows every concrete class."""

from __future__ import annotations

from dataclasses import dataclass

from services.ledger.api.server import LedgerServer
from services.ledger.api.servicer import LedgerServicer
from services.ledger.application.handler import CaseCommandHandler
from services.ledger.application.reads import LedgerReader
from services.ledger.infrastructure.store import EventsourcingStore
from services.settings import Settings


@dataclass
class Ledger:
    settings: Settings
    store: EventsourcingStore
    handler: CaseCommandHandler
    reader: LedgerReader
    server: LedgerServer

    def start(self) -> Ledger:
        self.server.start()
        return self

    def stop(self, grace: float | None = None) -> None:
        self.reader.stopping.set()  # live subscriptions end instead of holding the grace period
        self.server.stop(self.settings.grace_seconds if grace is None else grace)
        self.store.close()


def build_ledger(settings: Settings) -> Ledger:
    store = EventsourcingStore(
        settings.database_url,
        pool_size=settings.pool_size,
        cache_size=settings.aggregate_cache_size,
    )
    handler = CaseCommandHandler(store, settings.limits())
    reader = LedgerReader(store, max_limit=settings.read_limit)
    server = LedgerServer(
        LedgerServicer(handler, reader), settings.host, settings.port, settings.max_workers
    )
    return Ledger(settings, store, handler, reader, server)

"""The light part of the composition root: the event store and the projector, without gRPC.

``services.bootstrap`` builds whole processes from these; a process that only projects (an
import's projector, ``services.import_projector``) imports this module alone and starts quickly.
"""

from __future__ import annotations

from services.ledger.infrastructure.store import EventsourcingStore
from services.projector.credit import POLICIES
from services.projector.database import ReadModelDatabase
from services.projector.gcpacing import FrozenLongLived
from services.projector.projector import Projector, ProjectorObserver
from services.settings import Settings


def build_store(settings: Settings, pool_size: int | None = None) -> EventsourcingStore:
    return EventsourcingStore(
        settings.database_url,
        pool_size=settings.pool_size if pool_size is None else pool_size,
        cache_size=settings.aggregate_cache_size,
    )


def new_projector(
    settings: Settings,
    store: EventsourcingStore,
    readmodels: ReadModelDatabase,
    observer: ProjectorObserver | None = None,
) -> Projector:
    return Projector(
        store,
        readmodels,
        list(POLICIES.values()),
        batch_size=settings.projector_batch_size,
        observer=observer,
        gc_pacing=FrozenLongLived(),
    )

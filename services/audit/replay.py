"""Replay: every read model rebuilt from history up to a position (or a moment) into a database
of its own, with the projector's own machinery, so an auditor can ask "what did we know at
position N" or "who owned case X at time T" without touching the live read models."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from urllib.parse import parse_qs, urlencode, urlsplit

from services.audit.chain import plain_state
from services.ledger.domain.chain import utc_text
from services.ledger.infrastructure.store import EventsourcingStore
from services.projector import readmodels as rm
from services.projector.credit import CreditPolicy
from services.projector.database import ReadModelDatabase
from services.projector.projector import Projector

PAGE = 5_000


def position_as_of(store: EventsourcingStore, moment: datetime) -> int:
    """The end of the longest prefix of the global order recorded at or before ``moment``.

    Recording times follow the global order closely but not strictly (a time is taken before the
    append waits for the table lock), so the prefix ends at the first event recorded later.
    """
    limit = utc_text(moment)
    position = 0
    while rows := store.raw_events(position, PAGE):
        for row in rows:
            recorded = plain_state(row.state)["timestamp"]
            if recorded > limit:
                return position
            position = row.id
    return position


def replay_url(readmodel_url: str, position: int) -> str:
    """Where a replay goes by default: beside the live read models, never on them."""
    parts = urlsplit(readmodel_url)
    if parts.scheme == "sqlite":
        return f"{readmodel_url.removesuffix('.sqlite')}-replay-{position}.sqlite"
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    query["schema"] = f"{query.get('schema', 'readmodels')}_replay_{position}"
    return parts._replace(query=urlencode(query)).geturl()


def replay(
    store: EventsourcingStore,
    target: ReadModelDatabase,
    policies: Sequence[CreditPolicy],
    position: int,
    batch_size: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Rebuild every read model in ``target`` (emptied first) from positions 1..``position``."""
    with target.transaction(write=True) as cursor:
        rm.drop_tables(cursor)
    projector = Projector(store, target, policies, batch_size)
    while projector.run_once(stop_at=position):
        if progress is not None:
            progress(projector.position)
    return projector.position

"""Is the ledger's database reachable? For readiness checks, answered within seconds."""

from __future__ import annotations

import psycopg

from services.ledger.infrastructure.store import EventsourcingStore

PROBE_TIMEOUT_SECONDS = 2


class ReachabilityProbe:
    """One trivial query on a fresh connection of the probe's own: the pool would wait for a
    connection and retry for many seconds before admitting that the database is gone.

    A new connection per probe (every few seconds) keeps no state that could go stale, and holds
    a connection slot only for the moment of the check.
    """

    def __init__(self, store: EventsourcingStore) -> None:
        self._store = store

    def __call__(self) -> str | None:
        """None when the database answers, else why it does not."""
        if not self._store.is_postgres:
            self._store.max_position()  # an embedded SQLite file: a read either works or raises
            return None
        try:
            with psycopg.connect(
                self._store.conninfo,
                autocommit=True,
                connect_timeout=PROBE_TIMEOUT_SECONDS,
                options=f"-c statement_timeout={PROBE_TIMEOUT_SECONDS * 1000}",
            ) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as error:
            return f"the ledger database is unreachable: {str(error).strip()}"
        return None

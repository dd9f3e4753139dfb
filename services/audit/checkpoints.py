"""Checkpoints of the global order: the running global hash sealed every so many events.

Why checkpoints and not a running hash in every row: the global hash of position p needs the hash
of p-1, which only exists once p-1 is committed, so keeping it in the row would add a read and a
write under the append's table lock — the ledger's one serial section. A checkpointer that
follows the committed order costs the write path nothing. The price is a window: events after the
newest checkpoint are protected by their cases' chains and the gap-free positions alone (a
rewritten last event of a case, or events removed from the very end, are caught once a checkpoint
covers them). ``ledger serve`` seals every few seconds, so the window is small.

Appends restart the position sequence after the last committed position under the table lock,
so positions have no holes, even after a cut-off transaction, a crash or a failover. Should one
appear anyway (say, rows written by an older ledger), it is permanent below the newest committed
event, so the checkpointer records the holes it passes as known gaps and verification accepts them.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from eventsourcing.persistence import IntegrityError
from eventsourcing.postgres import PostgresDatastore

from services.audit.chain import Checkpoint, global_link
from services.ledger.domain.chain import CHAIN_FIELD, GENESIS
from services.ledger.infrastructure.store import EventsourcingStore

log = logging.getLogger(__name__)
READ_PAGE = 2_000


class CheckpointTable:
    """``<events table>`` → ``ledger_checkpoints``, in the ledger's own database and schema."""

    def __init__(self, store: EventsourcingStore, table_name: str = "ledger_checkpoints") -> None:
        self._datastore: Any = store.app.recorder.datastore  # type: ignore[attr-defined]
        self._postgres = isinstance(self._datastore, PostgresDatastore)
        if self._postgres:
            self._table = f'"{self._datastore.schema}"."{table_name}"'
            sealed_at = "timestamptz NOT NULL DEFAULT now()"
        else:
            self._table = table_name
            sealed_at = "TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"
        create = (
            f"CREATE TABLE IF NOT EXISTS {self._table} (position bigint PRIMARY KEY, "
            f"global_hash text NOT NULL, gaps text NOT NULL, sealed_at {sealed_at})"
        )
        try:
            self._write(create, ())
        except IntegrityError:
            # Two processes starting together on a fresh PostgreSQL race in CREATE TABLE IF NOT
            # EXISTS (a unique violation on pg_type): the other one made the table.
            self._write(create, ())

    def _write(self, statement: str, params: tuple[Any, ...]) -> None:
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(self._dialect(statement), params)

    def _read(self, statement: str, params: tuple[Any, ...]) -> list[Checkpoint]:
        with self._datastore.transaction(commit=False) as cursor:
            cursor.execute(self._dialect(statement), params)
            return [
                Checkpoint(
                    int(row["position"]), str(row["global_hash"]), tuple(json.loads(row["gaps"]))
                )
                for row in cursor.fetchall()
            ]

    def _dialect(self, statement: str) -> str:
        return statement.replace("?", "%s") if self._postgres else statement

    def all(self, up_to: int | None = None) -> list[Checkpoint]:
        if up_to is None:
            return self._read(f"SELECT * FROM {self._table} ORDER BY position", ())  # noqa: S608
        return self._read(
            f"SELECT * FROM {self._table} WHERE position <= ? ORDER BY position",  # noqa: S608
            (up_to,),
        )

    def last_before(self, position: int) -> Checkpoint | None:
        """The newest checkpoint at or before ``position``."""
        found = self._read(
            f"SELECT * FROM {self._table} WHERE position <= ? "  # noqa: S608
            "ORDER BY position DESC LIMIT 1",
            (position,),
        )
        return found[0] if found else None

    def add(self, checkpoint: Checkpoint) -> None:
        self._write(
            # Two checkpointers (two projector processes) compute the same values: the second
            # insert of a position changes nothing, and verification judges what is stored.
            f"INSERT INTO {self._table} (position, global_hash, gaps) VALUES (?, ?, ?) "  # noqa: S608
            "ON CONFLICT (position) DO NOTHING",
            (checkpoint.position, checkpoint.global_hash, json.dumps(list(checkpoint.gaps))),
        )


class Checkpointer:
    """Extends the global hash over newly committed events and seals it every ``every`` events."""

    def __init__(
        self, store: EventsourcingStore, table: CheckpointTable, every: int = 10_000
    ) -> None:
        self._store = store
        self._table = table
        self._every = every

    def seal(self) -> list[Checkpoint]:
        """Seal everything committed so far; return the checkpoints written."""
        last = self._table.last_before(2**62)
        position, global_hash = (last.position, last.global_hash) if last else (0, GENESIS)
        written: list[Checkpoint] = []
        gaps: list[int] = []
        since = 0
        while True:
            rows = self._store.raw_events(position, READ_PAGE)
            if not rows:
                break
            for row in rows:
                gaps.extend(range(position + 1, row.id))
                chain_hash = json.loads(row.state).get(CHAIN_FIELD) or ""
                global_hash = global_link(
                    global_hash, row.id, str(row.originator_id), row.originator_version, chain_hash
                )
                position = row.id
                since += 1
                if since >= self._every:
                    written.append(self._add(position, global_hash, gaps))
                    gaps, since = [], 0
        if since:
            written.append(self._add(position, global_hash, gaps))
        return written

    def _add(self, position: int, global_hash: str, gaps: list[int]) -> Checkpoint:
        checkpoint = Checkpoint(position, global_hash, tuple(gaps))
        self._table.add(checkpoint)
        if gaps:
            log.warning("checkpoint at %d passes holes in the global order: %s", position, gaps)
        return checkpoint

    def run(self, stop: threading.Event, interval: float = 5.0) -> None:
        """Seal every ``interval`` seconds until ``stop`` is set (``ledger serve``)."""
        while not stop.is_set():
            try:
                self.seal()
            except Exception:
                log.exception("checkpointing failed; trying again")
            stop.wait(interval)

"""Projector leadership: several replicas may run, exactly one applies events.

The leader is the PostgreSQL session that holds an advisory lock in the read-model database, on a
connection of its own that does nothing else. The lock lives exactly as long as that session: a
leader that is SIGKILLed (or whose host dies, once TCP keepalives notice) frees it, and a standby
polling with ``pg_try_advisory_lock`` takes it on its next poll, then resumes from the committed
tracking position. No consensus of our own: PostgreSQL's lock table is the single source of truth.

Holding the lock is not enough on its own: a leader whose lock session was cut (failover, network,
``pg_terminate_backend``) may not have noticed yet. So every read-model write transaction is
fenced: it first locks the tracking row, then checks — inside that transaction — that the lock
is still held by *our* session and that the committed position is the one this projector
believes. Two leaders' batches therefore serialize on the tracking row, and the one that lost
the lock fails its batch instead of committing it.
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import psycopg

from services.ledger.infrastructure.postgres_url import parse_postgres_url
from services.projector import readmodels as rm
from services.projector.database import Cursor, ReadModelDatabase
from services.projector.projector import TRACKING_NAME, Projector

log = logging.getLogger(__name__)

# First half of the two-integer advisory-lock key: the ledger's projector namespace ("LP").
LOCK_NAMESPACE = 0x4C50


class LeadershipLost(RuntimeError):
    """This process no longer leads: its batch must not commit."""


class LeaderLock:
    """A session-level advisory lock held on a dedicated connection."""

    def __init__(self, conninfo: str, schema: str) -> None:
        self._conninfo = conninfo
        self.key = (LOCK_NAMESPACE, zlib.crc32(schema.encode()) & 0x7FFFFFFF)
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self.held = False

    @property
    def backend_pid(self) -> int:
        assert self._conn is not None
        return int(self._conn.info.backend_pid)

    def try_acquire(self) -> bool:
        """Take the lock if it is free; never waits. False also when PostgreSQL is unreachable."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(
                    self._conninfo,
                    autocommit=True,
                    application_name="ledger-projector-leader",
                    # Notice a vanished server quickly, so a cut session stops leading.
                    keepalives_idle=5,
                    keepalives_interval=2,
                    keepalives_count=2,
                )
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s, %s)", self.key).fetchone()
            self.held = bool(row and row[0])
        except psycopg.Error as exc:
            log.warning("cannot reach the read-model database to campaign: %s", exc)
            self.release()
        return self.held

    def still_held(self) -> bool:
        """Whether our lock session is alive (the lock dies with it)."""
        if not self.held or self._conn is None:
            return False
        try:
            self._conn.execute("SELECT 1")
        except psycopg.Error:
            self.release()
        return self.held

    def check(self, cursor: Cursor) -> None:
        """Raise LeadershipLost unless our session holds the lock now (run inside a transaction)."""
        if not self.held:
            raise LeadershipLost("this projector does not hold the leader lock")
        cursor.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = ? AND objid = ? AND objsubid = 2 "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            self.key,
        )
        holders = {int(row[0]) for row in cursor.fetchall()}
        if holders != {self.backend_pid}:
            raise LeadershipLost(
                f"the leader lock is held by {sorted(holders) or 'nobody'}, "
                f"not by our session {self.backend_pid}"
            )

    def release(self) -> None:
        """Give the lock up by closing its session."""
        self.held = False
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


class FencedReadModels(ReadModelDatabase):
    """Read models whose write transactions commit only while this process leads."""

    def __init__(self, url: str, lock: LeaderLock) -> None:
        super().__init__(url)
        self._lock = lock
        self._believed_position: Callable[[], int] | None = None
        self.fenced_out = threading.Event()

    def follow(self, projector: Projector) -> None:
        """From now on a batch also requires the committed position to be ``projector``'s."""
        self._believed_position = lambda: projector.position

    def prepare(self) -> None:
        """Create the tables and the tracking row, so every later batch has a row to lock."""
        with self.transaction(write=True) as cursor:
            rm.create_tables(cursor)
            cursor.execute(
                f"INSERT INTO {rm.table('tracking')} (name, position) VALUES (?, 0) "  # noqa: S608
                "ON CONFLICT (name) DO NOTHING",
                (TRACKING_NAME,),
            )

    @contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[Cursor]:
        with super().transaction(write=write) as cursor:
            if write:
                try:
                    self._fence(cursor)
                except LeadershipLost:
                    self.fenced_out.set()
                    raise
            yield cursor

    def _fence(self, cursor: Cursor) -> None:
        believed = self._believed_position
        if believed is not None:
            cursor.execute(
                f"SELECT position FROM {rm.table('tracking')} WHERE name = ? FOR UPDATE",  # noqa: S608
                (TRACKING_NAME,),
            )
            row = cursor.fetchone()
            committed = int(row[0]) if row else 0
            if committed != believed():
                raise LeadershipLost(
                    f"the read models are at {committed}, not at {believed()}: another "
                    "projector wrote them"
                )
        self._lock.check(cursor)


def run_elected(
    readmodel_url: str,
    start_projector: Callable[[ReadModelDatabase], Projector],
    stop: threading.Event,
    poll_seconds: float = 1.0,
    wake: Callable[[], None] = lambda: None,
    alongside: Sequence[Callable[[threading.Event], None]] = (),
) -> None:
    """Campaign, lead while elected, stand by otherwise, until ``stop`` is set.

    ``start_projector`` builds a projector on the fenced read models at the start of each term
    (so it resumes from the committed position); ``wake`` interrupts its idle wait. Each of
    ``alongside`` (e.g. the audit checkpointer, which must run once, not once per replica) runs in
    its own thread for the length of each term, until the event it is given is set.
    """
    probe = ReadModelDatabase(readmodel_url)  # creates the schema, knows its name
    probe.close()
    lock = LeaderLock(parse_postgres_url(readmodel_url).conninfo(), probe.schema)
    standing_by = False
    try:
        while not stop.is_set():
            if not lock.try_acquire():
                if not standing_by:
                    log.info("projector standing by: another replica leads")
                    standing_by = True
                stop.wait(poll_seconds)
                continue
            standing_by = False
            log.info("projector leading (lock session pid %d)", lock.backend_pid)
            try:
                _lead(readmodel_url, lock, start_projector, stop, poll_seconds, wake, alongside)
            except (psycopg.Error, LeadershipLost) as exc:
                log.warning("projector term ended: %s", exc)
            lock.release()
            if not stop.is_set():
                log.warning("projector stepped down; campaigning again")
    finally:
        lock.release()


def _lead(
    readmodel_url: str,
    lock: LeaderLock,
    start_projector: Callable[[ReadModelDatabase], Projector],
    stop: threading.Event,
    poll_seconds: float,
    wake: Callable[[], None],
    alongside: Sequence[Callable[[threading.Event], None]],
) -> None:
    database = FencedReadModels(readmodel_url, lock)
    try:
        database.prepare()
        projector = start_projector(database)
        database.follow(projector)
        log.info("projector following from position %d", projector.position)
        term_over = threading.Event()
        worker = threading.Thread(target=projector.run, args=(term_over,), name="projector")
        companions = [
            threading.Thread(target=run, args=(term_over,), name=f"leader-{n}")
            for n, run in enumerate(alongside)
        ]
        for thread in [worker, *companions]:
            thread.start()
        try:
            while not stop.is_set() and worker.is_alive():
                if database.fenced_out.is_set():
                    raise LeadershipLost("a batch found another leader")
                if not lock.still_held():
                    raise LeadershipLost("the leader lock session was lost")
                stop.wait(poll_seconds)
        finally:
            term_over.set()
            wake()
            for thread in [worker, *companions]:
                thread.join()
        log.info("projector stopped at position %d", projector.position)
    finally:
        database.close()

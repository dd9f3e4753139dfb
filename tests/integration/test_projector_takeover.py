"""Projector high availability: two `ledger project` replicas, exactly one applies; SIGKILL it and
the standby takes over within a few seconds, and the read models still equal a clean rebuild.

Real processes on the real PostgreSQL. While the leader projects a large backlog in small
batches, a writer keeps appending, so the kill lands mid-stream and the takeover has live work.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from services.bootstrap import build_store
from services.projector import readmodels as rm
from services.projector.credit import POLICIES
from services.projector.database import ReadModelDatabase
from services.projector.leadership import FencedReadModels, LeaderLock, LeadershipLost
from services.projector.projector import rebuild
from services.settings import Settings
from tests.integration.test_projector_crash import (
    _schema_of,
    _without_query,
    assert_same_contents,
    children,  # noqa: F401  (fixture)
    fill,
    snapshot,
    start_project,
    story_commands,
    tracked_position,
)

TAKEOVER_LIMIT_SECONDS = 5.0
# A projector needs few connections; keep the shared test server's connection slots free.
SMALL_POOL = {"LEDGER_MAX_WORKERS": "2"}


def _lock_holders(server: str, schema: str) -> list[int]:
    """Backend pids holding the projector leader lock of ``schema``'s read models."""
    key = LeaderLock("", schema).key
    with psycopg.connect(server, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = %s AND objid = %s AND objsubid = 2",
            key,
        ).fetchall()
    return [int(r[0]) for r in rows]


def _wait_for(condition: object, timeout: float, what: str) -> float:
    """Poll ``condition()`` until true; return the seconds it took."""
    assert callable(condition)
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"timed out waiting for {what}"
        time.sleep(0.02)
    return time.monotonic() - started


@pytest.mark.postgres
def test_a_standby_projector_takes_over_from_a_killed_leader(
    postgres_url: str,
    tmp_path: Path,
    children: list[subprocess.Popen[bytes]],  # noqa: F811
) -> None:
    commands = story_commands(600, per_case=10, seed=99)
    backlog, live = commands[:3000], commands[3000:]
    store = build_store(Settings(database_url=postgres_url, max_workers=4))
    try:
        fill(store, backlog)
        server = _without_query(postgres_url)
        schema = f"{_schema_of(postgres_url)}_rm"
        readmodel_url = f"{server}?schema={schema}"
        logs = [tmp_path / "replica-a.log", tmp_path / "replica-b.log"]

        first = start_project(postgres_url, readmodel_url, logs[0], settings=SMALL_POOL)
        children.append(first)
        _wait_for(lambda: b"projector leading" in logs[0].read_bytes(), 30, "a leader")
        second = start_project(postgres_url, readmodel_url, logs[1], settings=SMALL_POOL)
        children.append(second)
        _wait_for(lambda: b"standing by" in logs[1].read_bytes(), 30, "the standby")
        _wait_for(lambda: tracked_position(server, schema) > 0, 30, "progress")

        # A writer keeps the ledger growing through the kill and the takeover.
        writing_done = threading.Event()
        failures: list[BaseException] = []

        def write_live() -> None:
            try:
                for start in range(0, len(live), 25):
                    fill(store, live[start : start + 25])
                    time.sleep(0.05)
            except BaseException as exc:
                failures.append(exc)
            finally:
                writing_done.set()

        writer = threading.Thread(target=write_live)
        writer.start()

        # Exactly one applies: one lock holder, and the standby never claimed to lead.
        time.sleep(1.0)
        assert len(_lock_holders(server, schema)) == 1
        assert b"projector leading" not in logs[1].read_bytes()
        before_kill = tracked_position(server, schema)
        assert before_kill > 0 and not writing_done.is_set(), "the kill must land mid-stream"

        first.send_signal(signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL
        killed_at = time.monotonic()
        _wait_for(lambda: b"projector leading" in logs[1].read_bytes(), 30, "the takeover")
        _wait_for(
            lambda: tracked_position(server, schema) > before_kill, 30, "progress after takeover"
        )
        takeover = time.monotonic() - killed_at
        print(f"\nprojector takeover: {takeover:.2f}s from SIGKILL to the standby's first batch")
        assert takeover < TAKEOVER_LIMIT_SECONDS, f"takeover took {takeover:.1f}s"

        writer.join(120)
        assert writing_done.is_set() and not failures, failures
        head = store.max_position()
        _wait_for(lambda: tracked_position(server, schema) == head, 120, "the catch-up")
        assert _lock_holders(server, schema) and len(_lock_holders(server, schema)) == 1
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0, logs[1].read_text(errors="replace")
        assert _lock_holders(server, schema) == [], "a stopped leader must free the lock"
        # Only leaders seal the audit checkpoints: both terms did, and only one process at a time.
        with psycopg.connect(server, autocommit=True) as conn:
            sealed = conn.execute(
                sql.SQL("SELECT count(*) FROM {}.ledger_checkpoints").format(
                    sql.Identifier(_schema_of(postgres_url))
                )
            ).fetchone()
        assert sealed is not None and sealed[0] >= 2, "the leaders sealed no checkpoints"

        rebuilt = ReadModelDatabase(f"{server}?schema={schema}_rebuilt")
        projected = ReadModelDatabase(readmodel_url)
        try:
            assert rebuild(store, rebuilt, list(POLICIES.values())) == head
            assert_same_contents(snapshot(projected), snapshot(rebuilt))
        finally:
            rebuilt.close()
            projected.close()
    finally:
        store.close()


@pytest.mark.postgres
def test_a_leader_whose_lock_session_was_cut_cannot_commit_a_batch(postgres_url: str) -> None:
    server = _without_query(postgres_url)
    schema = f"{_schema_of(postgres_url)}_rm"
    url = f"{server}?schema={schema}"
    ReadModelDatabase(url).close()  # creates the schema
    leader, rival = LeaderLock(server, schema), LeaderLock(server, schema)
    fenced = FencedReadModels(url, leader)
    try:
        assert leader.try_acquire()
        assert not rival.try_acquire(), "two sessions hold the leader lock"
        fenced.prepare()
        with fenced.transaction(write=True) as cursor:
            cursor.execute(f"UPDATE {rm.table('tracking')} SET position = 7")

        # The lock session is cut behind the leader's back; the rival takes the lock.
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (leader.backend_pid,))
        _wait_for(rival.try_acquire, 10, "the rival to take the freed lock")
        with pytest.raises(LeadershipLost), fenced.transaction(write=True) as cursor:
            cursor.execute(f"UPDATE {rm.table('tracking')} SET position = 8")
        assert fenced.fenced_out.is_set()
        assert tracked_position(server, schema) == 7, "the fenced batch must not commit"
    finally:
        fenced.close()
        leader.release()
        rival.release()

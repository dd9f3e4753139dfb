"""Restore drill: a ledger on a throwaway PostgreSQL is copied by base backup (into a fresh,
independent server) and by pg_dump/pg_restore (into a fresh database), and each copy holds the
same events and command records, a gap-free global order, contiguous versions, and passes
`ledger verify`.
"""

from __future__ import annotations

import os
import subprocess

import psycopg
import pytest

from services.bootstrap import build_store
from services.settings import Settings
from tests.e2e.processes import ledger_executable
from tests.integration.test_projector_crash import fill, story_commands
from tests.pg_cluster import PG_BIN, Cluster, _as_server_user

SCHEMA = "ledger"


def _contents(conninfo: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        events = conn.execute(
            f"SELECT notification_id, originator_id, originator_version, topic, state "
            f"FROM {SCHEMA}.ledger_events ORDER BY notification_id"
        ).fetchall()
        commands = conn.execute(
            f"SELECT command_id, case_id, kind, fingerprint, version_before, version_after "
            f"FROM {SCHEMA}.ledger_commands ORDER BY command_id"
        ).fetchall()
    return events, commands


def _verify(url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    return subprocess.run(
        [ledger_executable(), "verify", "--database-url", url],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.postgres
def test_a_base_backup_and_a_dump_restore_to_the_same_verified_ledger() -> None:
    with Cluster() as cluster:
        source = cluster.init_primary("source")
        # A lone primary: it must not wait for a synchronous standby that does not exist.
        with psycopg.connect(source.conninfo(), autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET synchronous_standby_names = ''")
            conn.execute("SELECT pg_reload_conf()")
            conn.execute("CREATE DATABASE ledger")
        url = f"{source.url}/ledger?schema={SCHEMA}"
        store = build_store(Settings(database_url=url, max_workers=2))
        try:
            recorded = fill(store, story_commands(120, per_case=8, seed=11))
        finally:
            store.close()
        original = _contents(source.conninfo("ledger"))
        assert len(original[0]) == recorded > 500

        restored = cluster.base_backup(source, "restored", standby=False)
        dump = cluster.root / "ledger.dump"
        _as_server_user(
            PG_BIN / "pg_dump", "-d", source.conninfo("ledger"), "-Fc", "-n", SCHEMA, "-f", dump
        )
        with psycopg.connect(restored.conninfo(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE ledger_from_dump")
        _as_server_user(
            PG_BIN / "pg_restore",
            "-d",
            restored.conninfo("ledger_from_dump"),
            "--exit-on-error",
            dump,
        )

        for database in ("ledger", "ledger_from_dump"):
            copy = _contents(restored.conninfo(database))
            assert copy == original, f"{database} differs from the source"
            events = copy[0]
            assert [e[0] for e in events] == list(range(1, len(events) + 1))
            versions: dict[object, list[object]] = {}
            for event in events:
                versions.setdefault(event[1], []).append(event[2])
            assert all(v == list(range(1, len(v) + 1)) for v in versions.values())
            checked = _verify(f"{restored.url}/{database}?schema={SCHEMA}")
            assert checked.returncode == 0, checked.stdout + checked.stderr
            print(f"\nrestore drill ({database}): {checked.stdout.strip().splitlines()[-1]}")

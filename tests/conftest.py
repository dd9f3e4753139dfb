"""Shared fixtures: a real PostgreSQL for every run, a fresh schema per test, and SQLite files.

PostgreSQL comes from LEDGER_TEST_DATABASE_URL (default: the local server). Where that cannot be
reached and a Docker engine answers, a throwaway container is started with testcontainers. If
neither works the run fails: the PostgreSQL guarantees are the point of these tests, so they are
never skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

DEFAULT_TEST_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _reachable(url: str) -> str | None:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return None
    except psycopg.Error as exc:
        return str(exc).strip()


def _docker_postgres() -> Iterator[str] | None:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
    except Exception:
        return None
    from testcontainers.postgres import PostgresContainer  # type: ignore[import-untyped]

    def run() -> Iterator[str]:
        with PostgresContainer("postgres:15", driver=None) as container:
            yield container.get_connection_url()

    return run()


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    url = os.environ.get("LEDGER_TEST_DATABASE_URL", DEFAULT_TEST_URL)
    problem = _reachable(url)
    if problem is None:
        yield url
        return
    container = _docker_postgres()
    if container is None:
        pytest.fail(
            f"PostgreSQL is required and unreachable at {url} ({problem}), and no Docker engine "
            "answers for testcontainers. Start PostgreSQL or set LEDGER_TEST_DATABASE_URL.",
            pytrace=False,
        )
    yield from container


@pytest.fixture(scope="session")
def postgres_run_url(postgres_server_url: str) -> Iterator[str]:
    """A database of its own for this test run, dropped at the end."""
    name = f"ledger_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base = postgres_server_url.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def postgres_url(postgres_run_url: str) -> str:
    """A fresh schema in the run's database: the ledger creates its tables there."""
    return f"{postgres_run_url}?schema=t_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def sqlite_url(tmp_path: object) -> str:
    return f"sqlite:///{tmp_path}/ledger.sqlite"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test that takes this runs once on SQLite and once on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))

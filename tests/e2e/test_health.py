"""Readiness through the standard health service: NOT_SERVING while the database is unreachable,
and for the QueryService while the projector lags too far; the server itself stays SERVING."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from psycopg import sql

from ownership.v1 import ledger_pb2_grpc, query_pb2, query_pb2_grpc
from services.bootstrap import QUERY_SERVICE_NAME, build_projector
from services.ledger.api.server import SERVICE_NAME, channel
from tests.e2e import wire
from tests.e2e.conftest import start_ledger

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def status(chan: grpc.Channel, service: str) -> int:
    answer = health_pb2_grpc.HealthStub(chan).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=5
    )
    return int(answer.status)


def wait_for(chan: grpc.Channel, service: str, wanted: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while (seen := status(chan, service)) != wanted:
        assert time.monotonic() < deadline, f"{service} stayed {seen}, wanted {wanted}"
        time.sleep(0.05)


@pytest.fixture
def own_database(postgres_server_url: str) -> Iterator[tuple[str, str]]:
    """A database of its own, so the test can lock everyone out of it."""
    name = f"ledger_health_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield f"{postgres_server_url.rsplit('/', 1)[0]}/{name}?connect_timeout=2", name
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def set_connections(admin_url: str, name: str, allowed: bool) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                sql.Identifier(name), sql.Literal(allowed)
            )
        )
        if not allowed:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                [name],
            )


def test_the_ledger_is_not_serving_while_its_database_is_unreachable(
    own_database: tuple[str, str], postgres_server_url: str
) -> None:
    url, name = own_database
    running = start_ledger(url, health_check_seconds=0.1, services="ledger")
    try:
        with channel(f"127.0.0.1:{running.server.port}") as chan:
            wait_for(chan, SERVICE_NAME, SERVING)
            set_connections(postgres_server_url, name, allowed=False)
            wait_for(chan, SERVICE_NAME, NOT_SERVING)
            assert status(chan, "") == SERVING  # alive: a restart would not help
            set_connections(postgres_server_url, name, allowed=True)
            wait_for(chan, SERVICE_NAME, SERVING)
            ledger = ledger_pb2_grpc.LedgerServiceStub(chan)
            assert ledger.Assign(wire.assign("H-1", "h/1"), timeout=10).result.version == 1
    finally:
        set_connections(postgres_server_url, name, allowed=True)
        running.stop(grace=1)


def test_the_query_service_is_not_serving_while_the_projector_lags(database_url: str) -> None:
    running = start_ledger(
        database_url,
        services="ledger,query",  # the projector runs elsewhere, and is not running now
        health_check_seconds=0.1,
        max_projector_lag_seconds=1.5,
    )
    try:
        assert running.readmodels is not None
        projector = build_projector(running.settings, running.store, running.readmodels)
        with channel(f"127.0.0.1:{running.server.port}") as chan:
            wait_for(chan, QUERY_SERVICE_NAME, SERVING)
            ledger = ledger_pb2_grpc.LedgerServiceStub(chan)
            ledger.Assign(wire.assign("H-2", "h/2"), timeout=10)
            assert status(chan, QUERY_SERVICE_NAME) == SERVING  # behind, but within 1.5 s
            wait_for(chan, QUERY_SERVICE_NAME, NOT_SERVING)
            assert status(chan, SERVICE_NAME) == SERVING
            assert projector.catch_up() == 1
            wait_for(chan, QUERY_SERVICE_NAME, SERVING)
    finally:
        running.stop(grace=1)


def test_queries_answer_unavailable_while_the_read_model_database_is_unreachable(
    own_database: tuple[str, str], postgres_server_url: str
) -> None:
    url, name = own_database
    running = start_ledger(url, services="ledger,query")
    try:
        assert running.readmodels is not None
        projector = build_projector(running.settings, running.store, running.readmodels)
        with channel(f"127.0.0.1:{running.server.port}") as chan:
            ledger_pb2_grpc.LedgerServiceStub(chan).Assign(wire.assign("H-3", "h/3"), timeout=10)
            assert projector.catch_up() == 1
            queries = query_pb2_grpc.QueryServiceStub(chan)
            ask = query_pb2.GetCurrentOwnerRequest(case_id="H-3")
            assert queries.GetCurrentOwner(ask, timeout=10).case.owner == wire.ALICE

            set_connections(postgres_server_url, name, allowed=False)
            with pytest.raises(grpc.RpcError) as refused:
                queries.GetCurrentOwner(ask, timeout=10)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # retryable, not UNKNOWN
            assert "read-model database is unavailable" in (refused.value.details() or "")

            set_connections(postgres_server_url, name, allowed=True)
            assert queries.GetCurrentOwner(ask, timeout=10).case.owner == wire.ALICE
    finally:
        set_connections(postgres_server_url, name, allowed=True)
        running.stop(grace=1)

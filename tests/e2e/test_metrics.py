"""The Prometheus endpoint, scraped over HTTP after real gRPC traffic: every figure moved by
exactly what the traffic did."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ownership.v1 import ledger_pb2 as pb
from ownership.v1 import ledger_pb2_grpc, query_pb2_grpc
from ownership.v1 import query_pb2 as q
from services.bootstrap import Ledger
from services.ledger.api.server import channel
from services.projector.projector import Projector
from tests.e2e import wire
from tests.e2e.conftest import start_ledger
from tests.e2e.processes import ledger_executable

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
CAROL = pb.Owner(agent_id="carol", group_id="identity-l2")
LEDGER = "ownership.v1.LedgerService"
QUERY = "ownership.v1.QueryService"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def measured_ledger(database_url: str) -> Iterator[Ledger]:
    running = start_ledger(database_url, metrics_port=0)
    yield running
    running.stop(grace=1)


def scrape(ledger: Ledger) -> Samples:
    assert ledger.telemetry is not None and ledger.telemetry.endpoint is not None
    return scrape_url(f"http://127.0.0.1:{ledger.telemetry.endpoint.port}/metrics")


def scrape_url(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def rpc(samples: Samples, suffix: str, service: str, method: str, code: str = "OK") -> float:
    return value(
        samples,
        f"ledger_grpc_server_{suffix}",
        grpc_service=service,
        grpc_method=method,
        grpc_code=code,
    )


def at(minutes: int) -> object:
    return wire.ts(T0 + timedelta(minutes=minutes))


def test_the_metrics_endpoint_counts_what_the_traffic_did(measured_ledger: Ledger) -> None:
    before = scrape(measured_ledger)
    assert value(before, "ledger_projector_position") == 0
    with channel(f"127.0.0.1:{measured_ledger.server.port}") as chan:
        ledger = ledger_pb2_grpc.LedgerServiceStub(chan)
        send = {"timeout": 10}
        ledger.Assign(wire.assign("M-1", "m/1", occurred_at=at(0)), **send)
        ledger.Transfer(wire.transfer("M-1", "m/2", wire.BOB, occurred_at=at(30)), **send)
        ledger.Transfer(wire.transfer("M-1", "m/3", CAROL, occurred_at=at(40)), **send)
        refused = wire.refusal(
            ledger.Resume, wire.request(pb.ResumeRequest, "M-1", "m/4"), timeout=10
        )
        assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
        resolved = ledger.Resolve(
            wire.request(pb.ResolveRequest, "M-1", "m/5", occurred_at=at(90)), **send
        )
        ledger.ExecuteBatch(
            pb.ExecuteBatchRequest(
                commands=[
                    pb.BatchCommand(assign=wire.assign("M-2", "m/6")),
                    pb.BatchCommand(assign=wire.assign("M-3", "m/7")),
                ]
            ),
            **send,
        )
        last = ledger.ReadAll(pb.ReadAllRequest(), **send).head_position
        query_pb2_grpc.QueryServiceStub(chan).GetCurrentOwner(
            q.GetCurrentOwnerRequest(case_id="M-1", min_position=last), **send
        )
    assert last == 6 and resolved.result.position == 4

    # The projector reports after each commit, a moment after readers may see it.
    deadline = time.monotonic() + 10
    while value(after := scrape(measured_ledger), "ledger_projector_events_total") < 6:
        assert time.monotonic() < deadline, "the projector never reported its 6 events"
        time.sleep(0.05)

    # RPCs by method and code; latency histograms count the same calls.
    assert rpc(after, "handled_total", LEDGER, "Assign") == 1
    assert rpc(after, "handled_total", LEDGER, "Transfer") == 2
    assert rpc(after, "handled_total", LEDGER, "Resume", "FAILED_PRECONDITION") == 1
    assert rpc(after, "handled_total", LEDGER, "Resume") == 0
    assert rpc(after, "handled_total", LEDGER, "Resolve") == 1
    assert rpc(after, "handled_total", LEDGER, "ExecuteBatch") == 1
    assert rpc(after, "handled_total", QUERY, "GetCurrentOwner") == 1
    assert rpc(after, "handling_seconds_count", LEDGER, "Transfer") == 2
    assert rpc(after, "handling_seconds_sum", LEDGER, "Transfer") > 0
    assert rpc(after, "handling_seconds_bucket", LEDGER, "Transfer") == 0  # no such sample
    assert (
        value(
            after,
            "ledger_grpc_server_handling_seconds_bucket",
            grpc_service=LEDGER,
            grpc_method="Transfer",
            grpc_code="OK",
            le="+Inf",
        )
        == 2
    )

    # The write path: five single commands through group commit (one refused), one batch.
    assert value(after, "ledger_group_commit_batch_commands_sum") == 5
    assert 1 <= value(after, "ledger_group_commit_batch_commands_count") <= 5
    assert value(after, "ledger_append_seconds_count") == 5  # 4 appends + 1 batch
    assert value(after, "ledger_events_appended_total", event="Assigned") == 3
    assert value(after, "ledger_events_appended_total", event="Transferred") == 2
    assert value(after, "ledger_events_appended_total", event="Resolved") == 1

    # The projector: where it is, no lag left, its batches timed.
    assert value(after, "ledger_projector_position") == 6
    assert value(after, "ledger_projector_head_position") == 6
    assert value(after, "ledger_projector_lag_events") == 0
    assert value(after, "ledger_projector_lag_seconds") == 0
    assert value(after, "ledger_projector_batch_seconds_count") >= 1
    assert value(after, "ledger_projector_batch_seconds_sum") > 0

    # Ownership durations by group, in event time: service-desk held M-1 for 30 minutes, then
    # identity-l2 for 60 (bob, then carol in the same group) until the resolution.
    assert value(after, "ledger_ownership_duration_seconds_count", group="service-desk") == 1
    assert value(after, "ledger_ownership_duration_seconds_sum", group="service-desk") == 1800
    assert value(after, "ledger_ownership_duration_seconds_count", group="identity-l2") == 1
    assert value(after, "ledger_ownership_duration_seconds_sum", group="identity-l2") == 3600


def test_the_lag_gauges_show_events_not_yet_projected(database_url: str) -> None:
    running = start_ledger(database_url, metrics_port=0, services="ledger,query")
    try:
        assert running.readmodels is not None
        Projector(
            running.store, running.readmodels, []
        )  # a projector that made its tables, stalled
        with channel(f"127.0.0.1:{running.server.port}") as chan:
            ledger = ledger_pb2_grpc.LedgerServiceStub(chan)
            ledger.Assign(wire.assign("L-1", "l/1"), timeout=10)
            ledger.Transfer(wire.transfer("L-1", "l/2", wire.BOB), timeout=10)
        time.sleep(0.3)
        samples = scrape(running)
    finally:
        running.stop(grace=1)
    assert value(samples, "ledger_projector_position") == 0  # no projector in this process
    assert value(samples, "ledger_projector_lag_events") == 2
    assert value(samples, "ledger_projector_lag_seconds") >= 0.3


def test_a_standalone_projector_serves_its_metrics(sqlite_url: str, tmp_path: Path) -> None:
    """`ledger project --metrics-port 0`: its position, lag and tenures, scraped over HTTP."""
    writer = start_ledger(sqlite_url, services="ledger")
    try:
        with channel(f"127.0.0.1:{writer.server.port}") as chan:
            ledger = ledger_pb2_grpc.LedgerServiceStub(chan)
            ledger.Assign(wire.assign("P-1", "p/1", occurred_at=at(0)), timeout=10)
            ledger.Transfer(wire.transfer("P-1", "p/2", wire.BOB, occurred_at=at(45)), timeout=10)
    finally:
        writer.stop(grace=1)
    log_path = tmp_path / "projector.log"
    with log_path.open("wb") as log:
        projector = subprocess.Popen(
            [ledger_executable(), "project", "--database-url", sqlite_url, "--metrics-port", "0"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith(("LEDGER_", "OTEL_"))},
        )
    try:
        deadline = time.monotonic() + 30
        while not (found := re.search(r"metrics on \S+:(\d+)/metrics", log_path.read_text())):
            assert projector.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        url = f"http://127.0.0.1:{found.group(1)}/metrics"
        while value(samples := scrape_url(url), "ledger_projector_position") < 2:
            assert time.monotonic() < deadline, samples
            time.sleep(0.05)
    finally:
        projector.send_signal(signal.SIGTERM)
        assert projector.wait(30) == 0, log_path.read_text()
    assert value(samples, "ledger_projector_lag_events") == 0
    assert value(samples, "ledger_projector_events_total") == 2
    assert value(samples, "ledger_ownership_duration_seconds_sum", group="service-desk") == 2700
    first_line = json.loads(log_path.read_text().splitlines()[0])  # JSON: stdout is a file
    assert first_line["logger"] == "ledger"

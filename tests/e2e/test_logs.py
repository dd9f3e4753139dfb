"""Structured logs: one JSON line per refused command, with its reason and trace, and no notes."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ownership.v1 import ledger_pb2 as pb
from ownership.v1 import ledger_pb2_grpc
from services.bootstrap import build_ledger
from services.ledger.api.server import channel
from services.observability.logs import log_handler
from services.observability.tracing import Tracing
from services.settings import Settings
from tests.e2e import wire

SECRET = "customer said her PIN is 4711"


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What the ledger logs at INFO, as its JSON handler writes it (a StringIO is no terminal)."""
    out = io.StringIO()
    handler = log_handler(out)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield out
    root.removeHandler(handler)
    root.setLevel(level)


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_each_refused_command_is_one_json_line_with_reason_and_trace(
    sqlite_url: str, log_lines: io.StringIO
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = Settings(database_url=sqlite_url, host="127.0.0.1", port=0)
    running = build_ledger(settings, tracing=Tracing(provider)).start()
    try:
        with channel(f"127.0.0.1:{running.server.port}") as chan:
            ledger = ledger_pb2_grpc.LedgerServiceStub(chan)
            ledger.Assign(wire.assign("LOG-1", "g/1", note=SECRET), timeout=10)
            ledger.Resolve(wire.request(pb.ResolveRequest, "LOG-1", "g/2", note=SECRET), timeout=10)
            refused = wire.refusal(
                ledger.Transfer, wire.transfer("LOG-1", "g/3", wire.BOB, note=SECRET), timeout=10
            )
            assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
            ledger.ExecuteBatch(
                pb.ExecuteBatchRequest(
                    commands=[
                        pb.BatchCommand(assign=wire.assign("LOG-2", "g/4", note=SECRET)),
                        pb.BatchCommand(
                            resume=wire.request(pb.ResumeRequest, "LOG-2", "g/5", note=SECRET)
                        ),
                    ]
                ),
                timeout=10,
            )
    finally:
        running.stop(grace=1)

    assert SECRET not in log_lines.getvalue()
    refusals = [line for line in lines(log_lines) if line.get("code")]
    assert len(refusals) == 2, refusals
    transfer, resume = refusals
    assert transfer["level"] == "INFO"
    assert transfer["method"] == "Transfer"
    assert (transfer["case_id"], transfer["command_id"]) == ("LOG-1", "g/3")
    assert transfer["code"] == "FAILED_PRECONDITION"
    assert transfer["reason"] == "CASE_RESOLVED"
    server = next(
        s for s in exporter.get_finished_spans() if s.name.endswith("LedgerService/Transfer")
    )
    assert transfer["trace_id"] == format(server.context.trace_id, "032x")
    assert transfer["span_id"] == format(server.context.span_id, "016x")
    assert (resume["index"], resume["case_id"], resume["command_id"]) == (1, "LOG-2", "g/5")
    assert (resume["code"], resume["reason"]) == ("FAILED_PRECONDITION", "NOT_PAUSED")
    batch = next(
        s for s in exporter.get_finished_spans() if s.name.endswith("LedgerService/ExecuteBatch")
    )
    assert resume["trace_id"] == format(batch.context.trace_id, "032x")

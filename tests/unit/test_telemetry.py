"""Tracing configuration from OTEL_* variables, stored trace contexts, and tenure endings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from opentelemetry.trace import NoOpTracerProvider

from services.ledger.domain.case import Case, Provenance
from services.ledger.domain.values import Owner, Tier, TransferReason
from services.observability.otlp import LeanGrpcSpanExporter as GrpcOtlp
from services.observability.otlp import LeanHttpSpanExporter as HttpOtlp
from services.observability.tracing import (
    span_exporters,
    trace_and_span_ids,
    tracing_from_env,
)
from services.projector.telemetry import ended_group_tenures

TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.parametrize(
    ("env", "kinds"),
    [
        ({}, []),
        ({"OTEL_TRACES_EXPORTER": "none"}, []),
        ({"OTEL_TRACES_EXPORTER": "console"}, [ConsoleSpanExporter]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, [HttpOtlp]),
        (
            {"OTEL_TRACES_EXPORTER": "otlp,console", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            [GrpcOtlp, ConsoleSpanExporter],
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4317",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
            },
            [GrpcOtlp],
        ),
    ],
)
def test_exporters_come_only_from_the_otel_variables(
    env: dict[str, str], kinds: list[type]
) -> None:
    assert [type(e) for e in span_exporters(env)] == kinds


def test_no_exporter_or_a_disabled_sdk_means_the_no_op_tracer() -> None:
    assert isinstance(tracing_from_env("x", {}).provider, NoOpTracerProvider)
    disabled = {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"}
    assert isinstance(tracing_from_env("x", disabled).provider, NoOpTracerProvider)
    tracing = tracing_from_env("ownership-ledger", {"OTEL_TRACES_EXPORTER": "console"})
    try:
        assert tracing.exporting
    finally:
        tracing.shutdown()


def test_an_unknown_exporter_or_protocol_is_refused() -> None:
    with pytest.raises(ValueError, match="zipkin"):
        span_exporters({"OTEL_TRACES_EXPORTER": "zipkin"})
    with pytest.raises(ValueError, match="http/json"):
        span_exporters({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})


def test_stored_trace_contexts_give_their_ids() -> None:
    assert trace_and_span_ids(TRACE) == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    assert trace_and_span_ids(None) == ("", "")
    assert trace_and_span_ids("not-a-traceparent") == ("", "")


T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def by(minutes: int, command_id: str) -> Provenance:
    return Provenance(T0 + timedelta(minutes=minutes), "tester", command_id)


def test_group_tenures_end_at_group_changes_and_resolutions() -> None:
    case = Case.open("C", Owner("alice", "desk"), Tier.L1, "", by(0, "1"))
    case.transfer(Owner("bob", "desk"), TransferReason.REROUTE, None, "", None, False, by(5, "2"))
    case.transfer(
        Owner("carol", "l2"), TransferReason.ESCALATION, None, "", None, True, by(20, "3")
    )
    case.resolve("fixed", "", by(50, "4"))
    case.reopen("came back", "", by(70, "5"))
    case.resolve("fixed again", "", by(80, "6"))
    events = list(case.pending_events)
    # desk held it 20 minutes (alice, then bob), l2 30 until resolved, then 10 after reopening.
    assert ended_group_tenures(events, 1) == [("desk", 1200.0), ("l2", 1800.0), ("l2", 600.0)]
    # Only endings at or after the given version: what a batch starting there newly ended.
    assert ended_group_tenures(events, 4) == [("l2", 1800.0), ("l2", 600.0)]
    assert ended_group_tenures(events, 7) == []

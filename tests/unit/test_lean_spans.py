"""Lean server spans record what the SDK's spans record, through the same provider.

Each test drives an SDK tracer and a LeanTracer of the same provider with the same calls and
compares what reaches the provider's processors (the SDK's in-memory exporter), apart from ids
and clocks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

from services.observability.lean_spans import LeanSpan
from services.observability.otlp import encode_spans
from services.observability.tracing import W3C, Tracing, trace_parent_of

CALLER = W3C.extract({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
OTHER = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(1))


def both(
    drive: Callable[[trace.Tracer], Any], provider: TracerProvider | None = None
) -> tuple[ReadableSpan, ReadableSpan, InMemorySpanExporter]:
    """The span ``drive`` records with the SDK's tracer, and with the lean one."""
    memory = InMemorySpanExporter()
    provider = provider or TracerProvider(resource=Resource({"service.name": "ledger"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracing = Tracing(provider)
    drive(tracing.tracer())
    lean = tracing.server_tracer()
    drive(lean)
    sdk_span, lean_span = memory.get_finished_spans()
    return sdk_span, lean_span, memory


def recorded(span: ReadableSpan) -> dict[str, Any]:
    """What a span says, without its ids and clocks (and an exception's stack trace)."""
    context = span.context
    assert context is not None
    parent = span.parent
    return {
        "name": span.name,
        "kind": span.kind,
        "trace": context.trace_id if parent is not None else "new",
        "flags": context.trace_flags,
        "parent": (parent.span_id, parent.is_remote) if parent is not None else None,
        "attributes": dict(span.attributes or {}),
        "events": [
            (e.name, {k: v for k, v in (e.attributes or {}).items() if k != "exception.stacktrace"})
            for e in span.events
        ],
        "links": [(link.context.span_id, dict(link.attributes or {})) for link in span.links],
        "status": (span.status.status_code, span.status.description),
        "resource": span.resource,
        "scope": span.instrumentation_scope,
        "dropped": (span.dropped_attributes, span.dropped_events, span.dropped_links),
    }


def a_server_call(tracer: trace.Tracer) -> None:
    span = tracer.start_span(
        "ownership.v1.LedgerService/Transfer",
        context=CALLER,
        kind=SpanKind.SERVER,
        attributes={"rpc.system": "grpc", "ledger.case_id": "INC-1", "ledger.handoff.warm": True},
        links=[Link(OTHER, {"why": "test"})],
    )
    span.add_event("handoff.requested")
    span.add_event("with facts", {"n": 3, "tiers": ["L1", "L2"]})
    with trace.use_span(span, end_on_exit=False):
        assert trace.get_current_span() is span
    span.set_attributes({"ledger.version": 2, "ledger.position": 10, "ratio": 0.5})
    span.set_attribute("ledger.case_id", "INC-1")  # set again: now the newest
    span.set_attribute("list", [1, 2, 3])
    span.set_attribute("tuple of text", ("a", "b"))
    span.set_attribute("not a value", {"nested": object()})  # type: ignore[dict-item]
    span.update_name("ownership.v1.LedgerService/Transfer2")
    span.set_status(Status(StatusCode.ERROR, "INTERNAL"))
    span.set_status(StatusCode.UNSET)  # never replaces a status
    span.end()
    span.set_attribute("after the end", 1)  # ignored once ended
    span.end()  # a second end changes nothing


def test_a_lean_span_records_what_the_sdks_span_records() -> None:
    sdk_span, lean_span, _ = both(a_server_call)
    assert isinstance(trace.get_current_span(), NonRecordingSpan)
    assert recorded(lean_span) == recorded(sdk_span)
    assert list(lean_span.attributes or {}) == list(sdk_span.attributes or {})  # same order
    assert lean_span.context is not None and sdk_span.context is not None
    assert lean_span.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert lean_span.context.span_id != sdk_span.context.span_id
    assert sdk_span.start_time is not None and lean_span.start_time is not None
    assert lean_span.end_time is not None and lean_span.end_time >= lean_span.start_time
    # Exported, the lean span is the same OTLP span as far as both encoders are concerned.
    assert encode_spans([lean_span]) == sdk_encode([lean_span]).SerializeToString()


def test_an_exception_in_a_current_lean_span_is_recorded_as_the_sdk_records_it() -> None:
    def failing(tracer: trace.Tracer) -> None:
        span = tracer.start_as_current_span("work", attributes={"k": "v"})
        with pytest.raises(ValueError, match="bad input"), span:
            raise ValueError("bad input")

    sdk_span, lean_span, _ = both(failing)
    assert recorded(lean_span) == recorded(sdk_span)
    assert lean_span.status.status_code is StatusCode.ERROR
    [event] = lean_span.events
    assert event.name == "exception" and event.attributes is not None
    assert event.attributes["exception.type"] == "ValueError"
    assert "bad input" in str(event.attributes["exception.stacktrace"])


def test_a_root_lean_span_starts_a_trace_that_its_children_continue() -> None:
    def root_and_child(tracer: trace.Tracer) -> None:
        with tracer.start_as_current_span("root", kind=SpanKind.SERVER) as root:
            assert trace_parent_of(root.get_span_context()) is not None
            child = tracer.start_span("child")
            assert child.get_span_context().trace_id == root.get_span_context().trace_id
            child.end()

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracing = Tracing(provider)
    root_and_child(tracing.tracer())
    root_and_child(tracing.server_tracer())
    sdk_child, sdk_root, lean_child, lean_root = memory.get_finished_spans()
    assert isinstance(tracing.server_tracer().start_span("x"), LeanSpan)
    for child, root in ((sdk_child, sdk_root), (lean_child, lean_root)):
        assert root.parent is None and child.parent is not None
        assert child.parent.span_id == root.context.span_id  # type: ignore[union-attr]
    assert recorded(lean_root) == recorded(sdk_root)
    assert lean_root.context.trace_flags == sdk_root.context.trace_flags  # type: ignore[union-attr]


def test_the_span_limits_drop_the_oldest_as_the_sdk_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "2")
    monkeypatch.setenv("OTEL_SPAN_EVENT_COUNT_LIMIT", "1")

    def crowded(tracer: trace.Tracer) -> None:
        span = tracer.start_span("crowded", attributes={"a": 1, "b": 2, "c": 3})
        span.set_attribute("d", 4)
        span.set_attribute("c", 30)
        span.add_event("first")
        span.add_event("second")
        span.end()

    sdk_span, lean_span, _ = both(crowded)
    assert dict(lean_span.attributes or {}) == {"d": 4, "c": 30}
    assert recorded(lean_span) == recorded(sdk_span)


def test_an_unsampled_call_records_nothing_but_keeps_its_context() -> None:
    provider = TracerProvider(sampler=ALWAYS_OFF)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    span = Tracing(provider).server_tracer().start_span("unsampled", context=CALLER)
    assert not span.is_recording()
    context = span.get_span_context()
    assert context.is_valid and not context.trace_flags.sampled
    assert context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    span.end()
    assert memory.get_finished_spans() == ()

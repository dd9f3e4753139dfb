"""The lean OTLP encoder and exporters: the bytes the SDK's encoder would produce, delivered to a
real OTLP receiver over gRPC and over HTTP.

Spans come from the SDK itself (a real tracer provider and the in-memory exporter), covering every
attribute type, events, links, status, trace state, remote and local parents, several resources
and scopes, and dropped counts.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from services.observability.otlp import LeanGrpcSpanExporter, LeanHttpSpanExporter, encode_spans
from services.observability.tracing import span_exporters

Request = trace_service_pb2.ExportTraceServiceRequest
REMOTE = SpanContext(
    trace_id=0x0AF7651916CD43DD8448EB211C80319C,
    span_id=0xB7AD6B7169203331,
    is_remote=True,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
    trace_state=TraceState([("vendor", "opaque"), ("other", "x1")]),
)


def recorded_spans() -> list[ReadableSpan]:
    """Spans of every shape the SDK can hand an exporter, from two providers (resources)."""
    memory = InMemorySpanExporter()
    ledger = TracerProvider(
        resource=Resource({"service.name": "ledger", "host.cores": 2}, "https://schema/1"),
        span_limits=SpanLimits(max_attributes=6, max_events=2, max_links=2),
    )
    projector = TracerProvider(resource=Resource({"service.name": "projector"}))
    for provider in (ledger, projector):
        provider.add_span_processor(SimpleSpanProcessor(memory))
    server = ledger.get_tracer("ownership-ledger")
    other = ledger.get_tracer("another-scope", "1.2", "https://schema/scope", {"scope.key": "v"})

    with server.start_as_current_span(
        "ownership.v1.LedgerService/Transfer",
        context=set_span_in_context(NonRecordingSpan(REMOTE)),
        kind=SpanKind.SERVER,
        attributes={
            "text": "bob@identity-l2",
            "unicode": "Zoë → 東京",
            "empty": "",
            "yes": True,
            "no": False,
        },
    ) as span:
        span.set_attribute("zero", 0)  # over max_attributes: the oldest is dropped and counted
        span.add_event("handoff.requested")
        span.add_event("with attributes", {"big": 2**62, "negative": -5, "ratio": 0.25})
        span.add_event("one too many")  # over max_events: dropped and counted
        span.set_status(Status(StatusCode.ERROR, "INTERNAL"))
        with server.start_as_current_span(
            "child",
            links=[
                Link(REMOTE, {"ledger.position": 7}),
                Link(span.get_span_context()),
                Link(REMOTE),  # over max_links
            ],
        ) as child:
            child.set_attribute("long", "x" * 300)
            child.set_status(Status(StatusCode.OK))
    with other.start_as_current_span("arrays", kind=SpanKind.CLIENT) as arrays:
        arrays.set_attribute("strings", ["a", "b", ""])
        arrays.set_attribute("ints", [1, -2, 300])
        arrays.set_attribute("floats", (1.5, -0.0))
        arrays.set_attribute("bools", [True, False])
        arrays.set_attribute("mapping", {"inner": "x", "n": 1})  # type: ignore[dict-item]
        arrays.set_attribute("bytes", b"\x00\x01")
    projector.get_tracer("projector").start_span("projector.batch", kind=SpanKind.CONSUMER).end()
    for kind in (SpanKind.PRODUCER, SpanKind.INTERNAL):
        server.start_span(f"kind {kind.name}", kind=kind).end()
    # The order of ending mixes resources and scopes, as a batch of a busy process does.
    spans = list(memory.get_finished_spans())
    assert len(spans) == 6
    return [spans[i] for i in (1, 3, 0, 2, 4, 5)]


def test_the_encoding_is_the_sdk_encoders_byte_for_byte() -> None:
    spans = recorded_spans()
    expected = sdk_encode(spans)
    encoded = encode_spans(spans)
    assert Request.FromString(encoded) == expected
    assert encoded == expected.SerializeToString()
    for one in spans:  # and each span alone, as a batch of one
        assert encode_spans([one]) == sdk_encode([one]).SerializeToString()


def test_equal_resources_from_different_objects_are_one_resource() -> None:
    memory = InMemorySpanExporter()
    for _ in range(2):
        provider = TracerProvider(resource=Resource({"service.name": "ledger"}))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        provider.get_tracer("ownership-ledger").start_span("s").end()
    spans = list(memory.get_finished_spans())
    assert spans[0].resource is not spans[1].resource
    decoded = Request.FromString(encode_spans(spans))
    assert len(decoded.resource_spans) == 1
    assert decoded == sdk_encode(spans)


class _Receiver(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.metadata: list[dict[str, Any]] = []

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.requests.append(request)
        self.metadata.append(dict(context.invocation_metadata()))
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
def grpc_receiver() -> Iterator[tuple[_Receiver, int]]:
    receiver = _Receiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield receiver, port
    server.stop(0)


def test_the_grpc_exporter_delivers_what_the_sdk_would_send(
    grpc_receiver: tuple[_Receiver, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver, port = grpc_receiver
    env = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{port}",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-tenant=ledger",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    [exporter] = span_exporters(env)
    assert isinstance(exporter, LeanGrpcSpanExporter)
    spans = recorded_spans()
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        assert exporter.export(spans[:1]) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert receiver.requests == [sdk_encode(spans), sdk_encode(spans[:1])]
    assert receiver.metadata[0]["x-tenant"] == "ledger"


def test_the_grpc_exporter_reports_a_refused_export() -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))  # no TraceService at all
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    exporter = LeanGrpcSpanExporter(endpoint=f"http://127.0.0.1:{port}", timeout=5)
    try:
        assert exporter.export(recorded_spans()) is SpanExportResult.FAILURE
    finally:
        exporter.shutdown()
        server.stop(0)


@pytest.fixture
def http_receiver() -> Iterator[tuple[list[tuple[str, bytes]], int]]:
    received: list[tuple[str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, body))
            status = 200 if self.path == "/v1/traces" else 404
            self.send_response(status)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield received, server.server_address[1]
    server.shutdown()
    server.server_close()


def test_the_http_exporter_posts_what_the_sdk_would_send(
    http_receiver: tuple[list[tuple[str, bytes]], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    received, port = http_receiver
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"}  # http/protobuf by default
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    [exporter] = span_exporters(env)
    assert isinstance(exporter, LeanHttpSpanExporter)
    spans = recorded_spans()
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert [path for path, _ in received] == ["/v1/traces"]
    assert Request.FromString(received[0][1]) == sdk_encode(spans)

    refused = LeanHttpSpanExporter(endpoint=f"http://127.0.0.1:{port}/elsewhere", timeout=5)
    try:
        assert refused.export(spans) is SpanExportResult.FAILURE
    finally:
        refused.shutdown()
    too_big = LeanHttpSpanExporter(
        endpoint=f"http://127.0.0.1:{port}/v1/traces", max_request_size=10
    )
    try:
        assert too_big.export(spans) is SpanExportResult.FAILURE
    finally:
        too_big.shutdown()
    assert len(received) == 2  # the refused one arrived; the oversized one was never sent

"""One trace from a caller through the ledger to the projector, over a real gRPC call.

The SDK's in-memory exporter collects every span the server and projector end; the caller is a
real gRPC client that sends a W3C ``traceparent`` header, as any instrumented service would.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider, SpanKind

from ownership.v1 import ledger_pb2 as pb
from ownership.v1 import ledger_pb2_grpc, query_pb2_grpc
from ownership.v1 import query_pb2 as q
from services.bootstrap import Ledger, build_auditor, build_ledger
from services.cli import main
from services.ledger.api.server import channel
from services.observability.tracing import W3C, Tracing, trace_parent_of
from services.settings import Settings
from tests.e2e import wire

ETA = datetime(2030, 1, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


@pytest.fixture
def traced_ledger(database_url: str, provider: TracerProvider) -> Iterator[Ledger]:
    settings = Settings(database_url=database_url, host="127.0.0.1", port=0)
    running = build_ledger(settings, tracing=Tracing(provider)).start()
    yield running
    running.stop(grace=1)


def only(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


def test_one_trace_spans_the_caller_the_ledger_and_the_projector(
    traced_ledger: Ledger, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    case_id = "TRACE-1"
    caller = provider.get_tracer("service-x")
    with channel(f"127.0.0.1:{traced_ledger.server.port}") as chan:
        ledger = ledger_pb2_grpc.LedgerServiceStub(chan)
        ledger.Assign(wire.assign(case_id, "t/1", tier=pb.TIER_L1), timeout=10)
        with caller.start_as_current_span("escalate", kind=SpanKind.CLIENT) as client_span:
            headers: dict[str, str] = {}
            W3C.inject(headers)
            reply = ledger.Transfer(
                wire.transfer(
                    case_id, "t/2", wire.BOB, tier=pb.TIER_L2, warm=True, eta=wire.ts(ETA)
                ),
                metadata=list(headers.items()),
                timeout=10,
            )
        # Read-your-writes: returns once the projector has applied the transfer.
        owner = query_pb2_grpc.QueryServiceStub(chan).GetCurrentOwner(
            q.GetCurrentOwnerRequest(case_id=case_id, min_position=reply.result.position),
            timeout=10,
        )
        assert owner.case.owner.agent_id == "bob"
        stored = traced_ledger.store.read_case(case_id, 1, 10)
        audit = build_auditor(traced_ledger.store).verify_case(case_id)
    traced_ledger.stop(grace=1)  # the projector thread ends: every span has ended
    spans = list(exporter.get_finished_spans())
    client = client_span.get_span_context()

    # client → server: the server span continues the caller's trace under the client span.
    server = only(spans, "ownership.v1.LedgerService/Transfer")
    assert server.kind is SpanKind.SERVER
    assert server.context.trace_id == client.trace_id
    assert server.parent is not None and server.parent.span_id == client.span_id
    assert server.attributes["ledger.case_id"] == case_id
    assert server.attributes["ledger.position"] == reply.result.position
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.OK.value[0]
    assert server.attributes["ledger.handoff.to"] == "bob@identity-l2"
    assert server.attributes["ledger.handoff.reason"] == "TRANSFER_REASON_ESCALATION"
    assert server.attributes["ledger.handoff.warm"] is True
    assert server.attributes["ledger.version"] == reply.result.version == 2
    assert [e.name for e in server.events] == ["handoff.requested"]

    # The event stores the server span's context, sealed into the case's hash chain with it.
    assert [r.event.trace_parent for r in stored] == [trace_parent_of(server.context)]
    assert audit.ok, audit.summary()

    # server → projector: the apply span is a child of the stored context, in the same trace.
    applied = only(spans, "projector.apply Transferred")
    assert applied.context.trace_id == client.trace_id
    assert applied.parent is not None and applied.parent.span_id == server.context.span_id
    assert applied.attributes["ledger.position"] == reply.result.position
    assert applied.attributes["ledger.handoff.from"] == "alice@service-desk"
    assert applied.attributes["ledger.handoff.to"] == "bob@identity-l2"
    assert applied.attributes["ledger.handoff.reason"] == "escalation"
    assert applied.attributes["ledger.handoff.tier"] == "L2"
    assert applied.attributes["ledger.handoff.warm"] is True
    assert applied.attributes["ledger.handoff.eta"] == ETA.isoformat()
    assert [e.name for e in applied.events] == ["handoff"]

    # The projector's batch span is a trace of its own, linked to the stored context it applied.
    batches = [
        s
        for s in spans
        if s.name == "projector.batch"
        and any(link.context.span_id == server.context.span_id for link in s.links)
    ]
    assert len(batches) == 1
    batch = batches[0]
    assert batch.context.trace_id != client.trace_id
    assert [link.context.span_id for link in applied.links] == [batch.context.span_id]
    assert batch.start_time is not None and applied.start_time == batch.start_time


def test_a_server_without_an_exporter_keeps_the_callers_trace_context(database_url: str) -> None:
    """No OTEL_* exporter: nothing is recorded, but the caller's context still reaches the event."""
    settings = Settings(database_url=database_url, host="127.0.0.1", port=0)
    running = build_ledger(settings, tracing=Tracing(NoOpTracerProvider())).start()
    try:
        caller = TracerProvider().get_tracer("service-x")
        with channel(f"127.0.0.1:{running.server.port}") as chan:
            ledger = ledger_pb2_grpc.LedgerServiceStub(chan)
            with caller.start_as_current_span("open") as client_span:
                headers: dict[str, str] = {}
                W3C.inject(headers)
                ledger.Assign(wire.assign("TRACE-2", "t2/1"), metadata=list(headers.items()))
            ledger.Transfer(wire.transfer("TRACE-2", "t2/2", wire.BOB), timeout=10)
        stored = running.store.read_case("TRACE-2", 0, 10)
    finally:
        running.stop(grace=1)
    assert stored[0].event.trace_parent == trace_parent_of(client_span.get_span_context())
    assert stored[1].event.trace_parent is None  # an untraced call stores no context


def test_a_batch_tags_every_command_with_the_calls_trace(
    traced_ledger: Ledger, exporter: InMemorySpanExporter
) -> None:
    with channel(f"127.0.0.1:{traced_ledger.server.port}") as chan:
        ledger = ledger_pb2_grpc.LedgerServiceStub(chan)
        batch = pb.ExecuteBatchRequest(
            commands=[
                pb.BatchCommand(assign=wire.assign("TRACE-3", "t3/1")),
                pb.BatchCommand(
                    transfer=wire.transfer("TRACE-3", "t3/2", wire.BOB, eta=wire.ts(ETA))
                ),
            ]
        )
        ledger.ExecuteBatch(batch, timeout=10)
    stored = traced_ledger.store.read_case("TRACE-3", 0, 10)
    server = only(list(exporter.get_finished_spans()), "ownership.v1.LedgerService/ExecuteBatch")
    assert {r.event.trace_parent for r in stored} == {trace_parent_of(server.context)}
    assert timedelta(0) <= datetime.now(UTC) - stored[0].event.recorded_at < timedelta(minutes=1)


def test_a_retry_under_another_trace_is_the_same_command(
    traced_ledger: Ledger, provider: TracerProvider
) -> None:
    caller = provider.get_tracer("service-x")
    answers = []
    with channel(f"127.0.0.1:{traced_ledger.server.port}") as chan:
        ledger = ledger_pb2_grpc.LedgerServiceStub(chan)
        for _ in range(2):
            with caller.start_as_current_span("open"):
                headers: dict[str, str] = {}
                W3C.inject(headers)
                answers.append(
                    ledger.Assign(
                        wire.assign("TRACE-4", "t4/1"), metadata=list(headers.items()), timeout=10
                    ).result
                )
    assert [a.replayed for a in answers] == [False, True]
    assert wire.answer(answers[0]) == wire.answer(answers[1])
    assert len(traced_ledger.store.read_case("TRACE-4", 0, 10)) == 1


def test_the_handoff_timeline_names_each_events_trace(
    traced_ledger: Ledger,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    capsys: pytest.CaptureFixture[str],
) -> None:
    case_id = "TRACE-5"
    target = f"127.0.0.1:{traced_ledger.server.port}"
    with channel(target) as chan:
        ledger = ledger_pb2_grpc.LedgerServiceStub(chan)
        ledger.Assign(wire.assign(case_id, "t5/1"), timeout=10)
        ledger.Pause(
            wire.request(pb.PauseRequest, case_id, "t5/2", reason=pb.PAUSE_REASON_SCHEDULED),
            timeout=10,
        )
        ledger.Resume(wire.request(pb.ResumeRequest, case_id, "t5/3"), timeout=10)
        ledger.JoinSwarm(
            wire.request(
                pb.JoinSwarmRequest, case_id, "t5/4", agent_id="carol", group_id="platform-l3",
                role=pb.SWARM_ROLE_CONSULTANT,
            ),
            timeout=10,
        )  # fmt: skip
        carol = pb.Owner(agent_id="carol", group_id="platform-l3")
        ledger.Transfer(wire.transfer(case_id, "t5/5", carol), timeout=10)
        timeline = query_pb2_grpc.QueryServiceStub(chan).GetHandoffTimeline(
            q.GetHandoffTimelineRequest(case_id=case_id), timeout=10
        )
        missing = wire.refusal(
            query_pb2_grpc.QueryServiceStub(chan).GetHandoffTimeline,
            q.GetHandoffTimelineRequest(case_id="NO-SUCH-CASE"),
            timeout=10,
        )
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    servers = {
        s.attributes["ledger.version"]: s
        for s in exporter.get_finished_spans()
        if s.kind is SpanKind.SERVER and s.attributes.get("ledger.case_id") == case_id
    }
    # Pause and resume are no handoffs; the expert joining, and leaving as she takes over, are.
    kinds = [e.event.WhichOneof("payload") for e in timeline.entries]
    assert kinds == ["assigned", "swarm_joined", "swarm_left", "transferred"]
    versions = [e.event.version for e in timeline.entries]
    assert versions == [1, 4, 5, 6]
    for entry, rpc_version in zip(timeline.entries, [1, 4, 6, 6], strict=True):
        server = servers[rpc_version]
        assert entry.trace_id == format(server.context.trace_id, "032x")
        assert entry.span_id == format(server.context.span_id, "016x")

    assert main(["trace", case_id, "--target", target]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"handoffs of {case_id}:"
    assert len(printed) == 5
    for line, entry in zip(printed[1:], timeline.entries, strict=True):
        assert f"trace {entry.trace_id} span {entry.span_id}" in line
    assert "transferred" in printed[-1] and "carol@platform-l3" in printed[-1]

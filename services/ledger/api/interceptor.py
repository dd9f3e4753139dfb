"""The one interceptor: every RPC of every service gets a server span (continuing the caller's W3C
``traceparent``), its count and latency by method and status code, and — for a refused command —
one log line with the reason.

Health checks and reflection pass through untouched: probes every few seconds are noise.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import grpc
from google.rpc import error_details_pb2, status_pb2
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from ownership.v1 import ledger_pb2 as pb
from services.ledger.api.status import grpc_code
from services.observability.metrics import Metrics
from services.observability.tracing import caller_context

log = logging.getLogger("ledger.rpc")

UNOBSERVED = ("/grpc.health.", "/grpc.reflection.")
# Codes that mean the server failed (OpenTelemetry's rule for server spans); the others are the
# caller's business and leave the span's status unset.
SERVER_FAULTS = {
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DATA_LOSS,
}
DETAILS_KEY = "grpc-status-details-bin"
HANDOFF_REQUESTS = (pb.TransferRequest, pb.JoinSwarmRequest, pb.LeaveSwarmRequest)
# Every single-command request, read off the batch's oneof so a new command is never missed.
COMMAND_REQUESTS = tuple(
    getattr(pb, cast(Any, field.message_type).name)
    for field in pb.BatchCommand.DESCRIPTOR.oneofs_by_name["command"].fields
)


class ObservingInterceptor(grpc.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(self, tracer: trace.Tracer, metrics: Metrics | None = None) -> None:
        self._tracer = tracer
        # Describing a command is work only a recording tracer needs (the no-op one ignores it).
        self._describing = not isinstance(tracer, trace.NoOpTracer)
        self._metrics = metrics
        self._wrapped: dict[str, tuple[Any, Any]] = {}  # method → (its handler, wrapped)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = continuation(details)
        method: str = details.method
        if handler is None or method.startswith(UNOBSERVED):
            return handler
        known = self._wrapped.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = self._wrap(handler, method)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, handler: Any, method: str) -> Any:
        service, _, name = method.lstrip("/").rpartition("/")
        call = _Call(self, service, name)
        if handler.unary_unary is not None:
            return handler._replace(unary_unary=call.wrap(handler.unary_unary))
        if handler.stream_unary is not None:
            return handler._replace(stream_unary=call.wrap(handler.stream_unary))
        if handler.unary_stream is not None:
            return handler._replace(unary_stream=call.wrap_stream(handler.unary_stream))
        return handler._replace(stream_stream=call.wrap_stream(handler.stream_stream))

    def finish(
        self,
        span: trace.Span,
        call: _Call,
        code: grpc.StatusCode,
        context: grpc.ServicerContext,
        seconds: float,
        request: Any = None,
        outcome: dict[str, Any] | None = None,
    ) -> None:
        span.set_attributes({"rpc.grpc.status_code": code.value[0], **(outcome or {})})
        if code in SERVER_FAULTS:
            span.set_status(Status(StatusCode.ERROR, code.name))
        if self._metrics is not None:
            labels = (call.service, call.method, code.name)
            self._metrics.rpc_handled.labels(*labels).inc()
            self._metrics.rpc_seconds.labels(*labels).observe(seconds)
        if code is not grpc.StatusCode.OK:
            _log_refusal(call.method, code, context, span, request)


class _Call:
    """One method's wrappers: the span, the clock and the outcome around its behaviour."""

    def __init__(self, interceptor: ObservingInterceptor, service: str, method: str) -> None:
        self.interceptor = interceptor
        self.service = service
        self.method = method
        self.name = f"{service}/{method}"
        self.attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}

    def _start(self, context: grpc.ServicerContext, request: Any = None) -> trace.Span:
        """The server span, with what the call asks for when it is a command: given at the
        start, all at once (one set instead of several, and samplers see them)."""
        attributes = self.attributes
        command = self.interceptor._describing and isinstance(request, COMMAND_REQUESTS)
        if command:
            attributes = attributes | _command_attributes(request)
        span = self.interceptor._tracer.start_span(
            self.name,
            context=caller_context(context.invocation_metadata()),
            kind=SpanKind.SERVER,
            attributes=attributes,
        )
        if command and isinstance(request, HANDOFF_REQUESTS):
            # A mark on the timeline; the facts are the span's attributes, not repeated here.
            span.add_event("handoff.requested")
        return span

    def wrap(self, behaviour: Callable[[Any, grpc.ServicerContext], Any]) -> Any:
        def observed(request: Any, context: grpc.ServicerContext) -> Any:
            started = time.perf_counter()
            span = self._start(context, request)
            token = otel_context.attach(trace.set_span_in_context(span))
            code = grpc.StatusCode.UNKNOWN
            outcome = None
            try:
                response = behaviour(request, context)
                code = _code(context) or grpc.StatusCode.OK
                outcome = _describe_response(request, response, span.is_recording())
                return response
            except Exception:
                code = _code(context) or grpc.StatusCode.UNKNOWN
                raise
            finally:
                seconds = time.perf_counter() - started
                self.interceptor.finish(span, self, code, context, seconds, request, outcome)
                otel_context.detach(token)
                span.end()

        return observed

    def wrap_stream(self, behaviour: Callable[[Any, grpc.ServicerContext], Iterator[Any]]) -> Any:
        # A stream's span covers the whole stream but is not made current: the generator resumes
        # between messages, where an attached context could leak into unrelated work.
        def observed(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            started = time.perf_counter()
            span = self._start(context)
            code = grpc.StatusCode.UNKNOWN
            try:
                yield from behaviour(request, context)
                code = _code(context) or grpc.StatusCode.OK
            except GeneratorExit:
                code = grpc.StatusCode.CANCELLED
                raise
            except Exception:
                code = _code(context) or grpc.StatusCode.UNKNOWN
                raise
            finally:
                self.interceptor.finish(span, self, code, context, time.perf_counter() - started)
                span.end()

        return observed


# The servicer context's getters for the outcome (grpcio has them; its type stubs do not yet).
def _code(context: grpc.ServicerContext) -> grpc.StatusCode | None:
    code: grpc.StatusCode | None = cast(Any, context).code()
    return code


def _details(context: grpc.ServicerContext) -> str:
    return str(cast(Any, context).details() or "")


def _when(stamp: Any) -> str:
    """A timestamp as RFC 3339; its raw seconds when out of range (the servicer refuses those)."""
    try:
        return str(stamp.ToJsonString())
    except ValueError:
        return f"{stamp.seconds}s"


def _name(enum: Any, number: int) -> str:
    """An enum value's name; the bare number when it is unknown (the servicer refuses those)."""
    try:
        return str(enum.Name(number))
    except ValueError:
        return str(number)


def _owner(owner: pb.Owner) -> str:
    return f"{owner.agent_id}@{owner.group_id}"


def _command_attributes(request: Any) -> dict[str, Any]:
    """Span attributes of a command: what was asked."""
    attributes: dict[str, Any] = {"ledger.case_id": request.case_id}
    if isinstance(request, pb.TransferRequest):
        attributes |= {
            "ledger.handoff.to": _owner(request.to_owner),
            "ledger.handoff.reason": _name(pb.TransferReason, request.reason),
            "ledger.handoff.tier": _name(pb.Tier, request.tier),
            "ledger.handoff.warm": request.warm,
        }
        if request.HasField("eta"):
            attributes["ledger.handoff.eta"] = _when(request.eta)
    elif isinstance(request, pb.JoinSwarmRequest):
        attributes |= {
            "ledger.swarm.agent_id": request.agent_id,
            "ledger.swarm.group_id": request.group_id,
            "ledger.swarm.role": _name(pb.SwarmRole, request.role),
        }
    elif isinstance(request, pb.LeaveSwarmRequest):
        attributes["ledger.swarm.agent_id"] = request.agent_id
    return attributes


def _describe_response(request: Any, response: Any, recording: bool) -> dict[str, Any] | None:
    """What the ledger did: span attributes of the appended version and position (returned when
    the span records), or a log line for each refused batch item."""
    result = getattr(response, "result", None)
    if isinstance(result, pb.AppendResult):
        if not recording:
            return None
        return {
            "ledger.version": result.version,
            "ledger.position": result.position,
            "ledger.events_recorded": result.events_recorded,
            "ledger.replayed": result.replayed,
        }
    if isinstance(response, pb.ExecuteBatchResponse):
        for index, item in enumerate(response.results):
            if item.HasField("error"):
                kind = request.commands[index].WhichOneof("command")
                command = getattr(request.commands[index], kind) if kind else None
                _log_refused_item(index, command, item.error)
    elif isinstance(response, pb.ImportEventsResponse):
        for refusal in response.refusals:
            _log_refused_item(refusal.index, refusal, refusal.error)
    return None


def _reason(status: status_pb2.Status) -> str:
    """The machine-readable why of a refusal: ErrorInfo's reason, else the fields at fault."""
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return str(info.reason)
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            return "INVALID_FIELDS:" + ",".join(v.field for v in bad.field_violations)
    return ""


def _log_refusal(
    method: str,
    code: grpc.StatusCode,
    context: grpc.ServicerContext,
    span: trace.Span,
    request: Any,
) -> None:
    status = status_pb2.Status()
    for key, value in context.trailing_metadata() or ():
        if key == DETAILS_KEY:
            status.ParseFromString(value)
    level = (
        logging.ERROR
        if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
        else (logging.INFO)
    )
    # Logged inside the span, so the line carries its trace and span ids.
    with trace.use_span(span, end_on_exit=False):
        log.log(
            level,
            "refused %s: %s",
            method,
            code.name,
            extra={"fields": {
                "method": method,
                "case_id": getattr(request, "case_id", ""),
                "command_id": getattr(request, "command_id", ""),
                "code": code.name,
                "reason": _reason(status),
                "detail": _details(context),
            }},
        )  # fmt: skip


def _log_refused_item(index: int, command: Any, status: status_pb2.Status) -> None:
    code = grpc_code(status)
    log.info(
        "refused batch command %d: %s",
        index,
        code.name,
        extra={"fields": {
            "index": index,
            "case_id": getattr(command, "case_id", ""),
            "command_id": getattr(command, "command_id", ""),
            "code": code.name,
            "reason": _reason(status),
            "detail": status.message,
        }},
    )  # fmt: skip

"""Tracing with OpenTelemetry: a tracer provider from the standard ``OTEL_*`` variables, and the
W3C trace context a command carries into its stored events.

Exporters are chosen only by the environment, as the OpenTelemetry specification names it:

- ``OTEL_TRACES_EXPORTER``: comma-separated ``otlp``, ``console`` or ``none``. When unset, ``otlp``
  if ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set, else none.
- ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` / ``OTEL_EXPORTER_OTLP_PROTOCOL``: ``grpc`` or
  ``http/protobuf`` (the default); endpoint, headers, timeouts come from the exporters' own
  ``OTEL_EXPORTER_OTLP_*`` variables, batching from ``OTEL_BSP_*``, sampling from
  ``OTEL_TRACES_SAMPLER``, service name and resource from ``OTEL_SERVICE_NAME`` and
  ``OTEL_RESOURCE_ATTRIBUTES``; ``OTEL_SDK_DISABLED=true`` turns it all off.

With no exporter nothing is recorded or exported: the no-op tracer still passes a caller's
``traceparent`` through, so events keep the caller's context and logs its trace id.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from services.observability.lean_spans import LeanTracer

INSTRUMENTATION = "ownership-ledger"
W3C = TraceContextTextMapPropagator()


@dataclass
class Tracing:
    """The process's tracer provider; the composition root hands its tracer to whoever traces."""

    provider: trace.TracerProvider

    def tracer(self) -> trace.Tracer:
        return self.provider.get_tracer(INSTRUMENTATION)

    def server_tracer(self) -> trace.Tracer:
        """The tracer of the RPC server spans, one per call: lean spans on the same provider
        (services.observability.lean_spans) when it records, else its no-op tracer."""
        tracer = self.tracer()
        if isinstance(tracer, SdkTracer):
            return LeanTracer(tracer)
        return tracer

    @property
    def exporting(self) -> bool:
        return isinstance(self.provider, SdkTracerProvider)

    def shutdown(self) -> None:
        """Flush what is buffered and stop exporting."""
        if isinstance(self.provider, SdkTracerProvider):
            self.provider.shutdown()


def tracing_from_env(service_name: str, environ: Mapping[str, str] | None = None) -> Tracing:
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return Tracing(trace.NoOpTracerProvider())
    exporters = span_exporters(env)
    if not exporters:
        return Tracing(trace.NoOpTracerProvider())
    provider = SdkTracerProvider(resource=_resource(service_name))
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return Tracing(provider)


def _resource(service_name: str) -> Resource:
    resource = Resource.create()  # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": service_name}))
    return resource


def span_exporters(env: Mapping[str, str]) -> list[SpanExporter]:
    names = env.get("OTEL_TRACES_EXPORTER")
    if names is None:
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        names = "otlp" if endpoint else ""
    exporters: list[SpanExporter] = []
    for name in (n.strip().lower() for n in names.split(",")):
        if name in ("", "none"):
            continue
        if name == "console":
            exporters.append(ConsoleSpanExporter())
        elif name == "otlp":
            exporters.append(_otlp_exporter(env))
        else:
            raise ValueError(f"OTEL_TRACES_EXPORTER: unsupported exporter {name!r}")
    return exporters


def _otlp_exporter(env: Mapping[str, str]) -> SpanExporter:
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    # The SDK's exporters with a leaner encoder of the same bytes (services.observability.otlp,
    # imported here: it loads both exporters and their transports).
    if protocol == "grpc":
        from services.observability.otlp import LeanGrpcSpanExporter

        return LeanGrpcSpanExporter()
    if protocol == "http/protobuf":
        from services.observability.otlp import LeanHttpSpanExporter

        return LeanHttpSpanExporter()
    raise ValueError(f"OTLP protocol {protocol!r} is not supported: use grpc or http/protobuf")


# --- the W3C trace context stored with events ---------------------------------------------------


def trace_parent_of(span_context: SpanContext) -> str | None:
    """``span_context`` as a W3C ``traceparent`` value; None when it is not a valid context."""
    if not span_context.is_valid:
        return None
    # The W3C format, written directly: this runs for every command, and the propagator's
    # inject would build a context and a span around the same four fields.
    return (
        f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-"
        f"{span_context.trace_flags:02x}"
    )


_NO_PARENT = Context()


def caller_context(metadata: Sequence[tuple[str, str | bytes]]) -> Context:
    """The caller's trace context from W3C headers in gRPC metadata: an empty context (the span
    starts a trace) when there is no ``traceparent``, without running the propagator."""
    for key, _ in metadata:
        if key == "traceparent":
            return W3C.extract({k: v for k, v in metadata if isinstance(v, str)})
    return _NO_PARENT


def current_trace_parent() -> str | None:
    """The ``traceparent`` of the span current in this thread (None outside any trace)."""
    return trace_parent_of(trace.get_current_span().get_span_context())


def span_context_of(trace_parent: str | None) -> SpanContext | None:
    """The (remote) span context a stored ``traceparent`` names; None when absent or malformed."""
    if not trace_parent:
        return None
    context = trace.get_current_span(W3C.extract({"traceparent": trace_parent})).get_span_context()
    return context if context.is_valid else None


def trace_and_span_ids(trace_parent: str | None) -> tuple[str, str]:
    """Hex trace id and span id of a stored ``traceparent`` ("" and "" when there is none)."""
    context = span_context_of(trace_parent)
    if context is None:
        return "", ""
    return format(context.trace_id, "032x"), format(context.span_id, "016x")

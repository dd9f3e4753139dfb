"""Lean recording spans for the RPC hot path, handed to the SDK's own span processors.

The SDK's span checks every attribute value through a generic cleaner, under a lock, into a
bounded mapping, and copies itself into a ReadableSpan when it ends: on this project's 2-core box
that was about 70 us of the ~100 us a traced call spent creating its server span. A ``LeanSpan``
keeps what the server sets in a plain dict (str, bool, int and float values are stored as they
are; anything else goes through the SDK's own checks) and, when it ends, becomes one SDK
``ReadableSpan`` passed to the tracer provider's processors, so batching, export and the
in-memory exporter of the tests are the SDK's. The trace and span ids, the sampling decision and
the resource come from the same provider as every other span.

What it leaves out: the SDK's internal self-metrics (off unless
``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED``) do not count these spans, and attribute values are
not truncated to ``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT``. Attribute and event counts keep the
``OTEL_SPAN_*_COUNT_LIMIT`` limits as the SDK does: the oldest makes room, and is counted.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util.types import AnyValue, Attributes

log = logging.getLogger(__name__)

_PLAIN = (str, bool, int, float)
_UNLIMITED = sys.maxsize


def _limit(configured: int | None) -> int:
    return _UNLIMITED if configured is None else configured


_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_UNSAMPLED = TraceFlags(TraceFlags.DEFAULT)


class LeanTracer(trace.Tracer):
    """Spans of ``sdk_tracer``'s provider (its sampler, id generator, resource and processors),
    recorded as ``LeanSpan``."""

    def __init__(self, sdk_tracer: SdkTracer) -> None:
        self._sampler = sdk_tracer.sampler
        self._ids = sdk_tracer.id_generator
        self._processor = sdk_tracer.span_processor
        self._resource = sdk_tracer.resource
        # The SDK tracer's own scope object, so that both tracers' spans group as one scope.
        info = sdk_tracer.instrumentation_info
        self._scope: InstrumentationScope = getattr(
            sdk_tracer,
            "_instrumentation_scope",
            InstrumentationScope(info.name, info.version, info.schema_url),
        )
        limits = SpanLimits()  # the OTEL_SPAN_*_COUNT_LIMIT variables, as the SDK reads them
        self._max_attributes = _limit(limits.max_span_attributes)
        self._max_events = _limit(limits.max_events)

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        links = links or ()
        parent: SpanContext | None = trace.get_current_span(context).get_span_context()
        if parent is None or not parent.is_valid:
            parent = None
            trace_id = self._ids.generate_trace_id()
            random_id = self._ids.is_trace_id_random()
        else:
            trace_id = parent.trace_id
            random_id = parent.trace_flags.random_trace_id
        sampling = self._sampler.should_sample(context, trace_id, name, kind, attributes, links)
        flags = _SAMPLED if sampling.decision is Decision.RECORD_AND_SAMPLE else _UNSAMPLED
        if random_id:
            flags = TraceFlags(flags | TraceFlags.RANDOM_TRACE_ID)
        span_context = SpanContext(
            trace_id,
            self._ids.generate_span_id(),
            is_remote=False,
            trace_flags=flags,
            trace_state=sampling.trace_state,
        )
        if sampling.decision is Decision.DROP:
            return trace.NonRecordingSpan(span_context)
        span = LeanSpan(self, name, span_context, parent, kind, links, start_time)
        if sampling.attributes:
            span.set_attributes(sampling.attributes)
        self._processor.on_start(span, parent_context=context)  # type: ignore[arg-type]
        return span

    @contextmanager  # the API's own decorator is private; this one serves `with` alike
    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace.Span]:
        span = self.start_span(name, context, kind, attributes, links, start_time)
        with trace.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as current:
            yield current


class LeanSpan(trace.Span):
    """A recording span whose attributes are a plain dict until it ends (see the module)."""

    def __init__(
        self,
        tracer: LeanTracer,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        links: Sequence[Link],
        start_time: int | None,
    ) -> None:
        self._tracer = tracer
        self._name = name
        self._context = context
        self._parent = parent
        self._kind = kind
        self._links = tuple(links)
        self._start_time = start_time or time.time_ns()
        self._end_time: int | None = None
        self._attributes: dict[str, AnyValue] = {}
        self._events: list[Event] = []
        self._status = Status(StatusCode.UNSET)
        self._dropped_attributes = 0
        self._dropped_events = 0

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return self._end_time is None

    def set_attribute(self, key: str, value: AnyValue) -> None:
        self.set_attributes({key: value})

    def set_attributes(self, attributes: Mapping[str, AnyValue]) -> None:
        if self._end_time is not None:
            return
        held = self._attributes
        for key, given in attributes.items():
            value = given
            if type(given) not in _PLAIN:
                # Not one of the plain types the server sets: the SDK's checks decide.
                checked = BoundedAttributes(attributes={key: given})
                if key not in checked:
                    continue
                value = checked[key]
            if key in held:
                del held[key]  # a key set again is the newest, as in the SDK's mapping
            elif len(held) >= self._tracer._max_attributes:
                if not held:
                    self._dropped_attributes += 1
                    continue
                del held[next(iter(held))]  # full: the oldest makes room, as in the SDK
                self._dropped_attributes += 1
            held[key] = value

    def add_event(
        self, name: str, attributes: Attributes = None, timestamp: int | None = None
    ) -> None:
        if self._end_time is not None:
            return
        if len(self._events) >= self._tracer._max_events:
            self._dropped_events += 1
            if not self._events:
                return
            del self._events[0]  # full: the oldest makes room, as in the SDK
        checked = BoundedAttributes(attributes=attributes) if attributes else None
        self._events.append(Event(name, checked, timestamp or time.time_ns()))

    def update_name(self, name: str) -> None:
        if self._end_time is None:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        # As the SDK: OK is final, and UNSET never replaces a status.
        if self._end_time is not None or self._status.status_code is StatusCode.OK:
            return
        if isinstance(status, StatusCode):
            status = Status(status, description)
        if status.status_code is not StatusCode.UNSET:
            self._status = status

    def record_exception(
        self,
        exception: BaseException,
        attributes: Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        kind = type(exception)
        module = kind.__module__
        recorded: dict[str, AnyValue] = {
            "exception.type": kind.__qualname__
            if module in ("", "builtins")
            else f"{module}.{kind.__qualname__}",
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        self.add_event("exception", {**recorded, **(attributes or {})}, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is not None:
            log.warning("Calling end() on an ended span.")
            return
        self._end_time = end_time or time.time_ns()
        tracer = self._tracer
        tracer._processor.on_end(
            _Finished(
                name=self._name,
                context=self._context,
                parent=self._parent,
                resource=tracer._resource,
                attributes=self._attributes,
                events=tuple(self._events),
                links=self._links,
                kind=self._kind,
                status=self._status,
                start_time=self._start_time,
                end_time=self._end_time,
                instrumentation_scope=tracer._scope,
                dropped=(self._dropped_attributes, self._dropped_events),
            )
        )


class _Finished(ReadableSpan):
    """The SDK's ReadableSpan of a LeanSpan, with the counts of what its limits dropped."""

    def __init__(self, *, dropped: tuple[int, int], **fields: Any) -> None:
        super().__init__(**fields)
        self._dropped_counts = dropped

    @property
    def dropped_attributes(self) -> int:
        return self._dropped_counts[0]

    @property
    def dropped_events(self) -> int:
        return self._dropped_counts[1]

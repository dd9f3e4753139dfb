"""OTLP span export with a leaner encoder: the same ``ExportTraceServiceRequest`` bytes the SDK's
exporters send, written straight in the protobuf wire format.

The SDK's encoder builds a protobuf message for every span, attribute, value and event through
a chain of Python helpers: about as much CPU per span as the span itself, spent in the batch
processor's export thread, which holds the GIL the RPC threads need. Here a span is a few
``bytes`` joins: field tags are constants, an attribute key is encoded once per process, and a
short string or bool attribute (method names, reasons, tiers) once per value. Resource and scope
go through the SDK's own encoder, once each.

The exporters are the SDK's OTLP exporters (endpoint, headers, TLS, compression, timeout and
retries from the same ``OTEL_EXPORTER_OTLP_*`` variables), handed these bytes instead of a
message to serialize. A test holds the bytes to what the SDK's encoder produces.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any, cast

import grpc
from opentelemetry.exporter.otlp.proto.common._internal import (
    _encode_instrumentation_scope,
    _encode_resource,
)
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http._common import (
    RequestPayloadTooLargeError,
    _is_request_too_large,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE
from opentelemetry.trace import SpanContext, SpanKind

_log = logging.getLogger(__name__)

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

# Span flags (trace.proto SpanFlags): whether the parent or link context is known to be remote.
_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200

_fixed32 = struct.Struct("<I").pack
_fixed64 = struct.Struct("<Q").pack
_double = struct.Struct("<d").pack
_SMALL = [bytes((n,)) for n in range(128)]


def _varint(n: int) -> bytes:
    if 0 <= n < 128:
        return _SMALL[n]
    if n < 0:
        n += 1 << 64  # int64 on the wire: two's complement, ten bytes
    out = bytearray()
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _delimited(tag: bytes, body: bytes) -> bytes:
    return tag + _varint(len(body)) + body


def _string(tag: bytes, text: str) -> bytes:
    return _delimited(tag, text.encode())


# --- attributes: KeyValue { key = 1; AnyValue value = 2 } --------------------------------------


def _any_value(value: Any) -> bytes:
    """An AnyValue message body, following the SDK's mapping of Python types."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _string(b"\x0a", value)
    if isinstance(value, int):
        return b"\x18" + _varint(value)
    if isinstance(value, float):
        return b"\x21" + _double(value)
    if isinstance(value, bytes):
        return _delimited(b"\x3a", value)
    if isinstance(value, Sequence):
        items = b"".join(_delimited(b"\x0a", _any_value(v)) for v in value)
        return _delimited(b"\x2a", items)
    if isinstance(value, Mapping):
        pairs = b"".join(_delimited(b"\x0a", _key_value(str(k), v)) for k, v in value.items())
        return _delimited(b"\x32", pairs)
    raise TypeError(f"invalid attribute value type {type(value)}")


_KEYS: dict[str, bytes] = {}
_FIELDS: dict[tuple[bytes, str, Any, type], bytes] = {}
_MAX_CACHED = 4096  # entries of each cache; a full cache starts again
_CACHED_TEXT = 64  # characters: longer strings (and most numbers) are encoded every time


def _key_value(key: str, value: Any) -> bytes:
    encoded_key = _KEYS.get(key)
    if encoded_key is None:
        if len(_KEYS) >= _MAX_CACHED:
            _KEYS.clear()
        encoded_key = _KEYS[key] = _string(b"\x0a", key)
    return encoded_key + _delimited(b"\x12", _any_value(value))


def _attribute_field(cache_key: tuple[bytes, str, Any, type]) -> bytes:
    """One KeyValue (a str, bool or int) as the field ``tag`` of its message; remembered for a
    bool, a short string or a small number."""
    tag, key, value, kind = cache_key
    field = _delimited(tag, _key_value(key, value))
    if (
        kind is bool
        or (kind is str and len(value) <= _CACHED_TEXT)
        or (kind is int and 0 <= value < 128)  # status codes, counts
    ):
        if len(_FIELDS) >= _MAX_CACHED:
            _FIELDS.clear()
        _FIELDS[cache_key] = field
    return field


def _add_attributes(parts: list[bytes], tag: bytes, attributes: Mapping[str, Any] | None) -> None:
    # The SDK's BoundedAttributes is a MutableMapping over a plain dict: iterating the dict
    # skips the ABC's item view, a third of the encoding time.
    plain = getattr(attributes, "_dict", attributes)
    if not plain:
        return
    fields = _FIELDS
    for key, value in plain.items():
        kind = type(value)
        if kind is str or kind is bool or kind is int:
            cache_key = (tag, key, value, kind)
            parts.append(fields.get(cache_key) or _attribute_field(cache_key))
        else:
            try:
                parts.append(_delimited(tag, _key_value(key, value)))
            except TypeError as error:  # as the SDK's encoder: the attribute is left out
                _log.error("Failed to encode key %s: %s", key, error)


# --- spans --------------------------------------------------------------------------------------


_LOCAL_FLAGS = _fixed32(_HAS_IS_REMOTE)
_REMOTE_FLAGS = _fixed32(_HAS_IS_REMOTE | _IS_REMOTE)


def _flags(context: SpanContext | None) -> bytes:
    return _REMOTE_FLAGS if context is not None and context.is_remote else _LOCAL_FLAGS


def _span(span: ReadableSpan) -> bytes:
    """A Span message body, field by field as the SDK's encoder fills it."""
    context = span.context
    assert context is not None
    parent = span.parent
    parts = [
        b"\x0a\x10",
        context.trace_id.to_bytes(16, "big"),
        b"\x12\x08",
        context.span_id.to_bytes(8, "big"),
    ]
    if context.trace_state:
        state = ",".join(f"{k}={v}" for k, v in context.trace_state.items())
        parts.append(_string(b"\x1a", state))
    if parent is not None:
        parts += (b"\x22\x08", parent.span_id.to_bytes(8, "big"))
    parts.append(_NAMES.get((span.name, span.kind)) or _name_and_kind(span.name, span.kind))
    if span.start_time:
        parts += (b"\x39", _fixed64(span.start_time))
    if span.end_time:
        parts += (b"\x41", _fixed64(span.end_time))
    # The span's own BoundedAttributes, not the read-only proxy around it (see _attributes).
    _add_attributes(parts, b"\x4a", getattr(span, "_attributes", None) or span.attributes)
    if span.dropped_attributes:
        parts += (b"\x50", _varint(span.dropped_attributes))
    for event in span.events:
        event_parts = [b"\x09", _fixed64(event.timestamp)]
        if event.name:
            event_parts.append(_string(b"\x12", event.name))
        _add_attributes(event_parts, b"\x1a", event.attributes)
        if event.dropped_attributes:
            event_parts += (b"\x20", _varint(event.dropped_attributes))
        parts.append(_delimited(b"\x5a", b"".join(event_parts)))
    if span.dropped_events:
        parts += (b"\x60", _varint(span.dropped_events))
    for link in span.links:
        link_parts = [
            b"\x0a\x10",
            link.context.trace_id.to_bytes(16, "big"),
            b"\x12\x08",
            link.context.span_id.to_bytes(8, "big"),
        ]
        _add_attributes(link_parts, b"\x22", link.attributes)
        if link.dropped_attributes:
            link_parts += (b"\x28", _varint(link.dropped_attributes))
        link_parts += (b"\x35", _flags(link.context))
        parts.append(_delimited(b"\x6a", b"".join(link_parts)))
    if span.dropped_links:
        parts += (b"\x70", _varint(span.dropped_links))
    status = span.status
    if status.description or status.status_code.value:
        status_parts = []
        if status.description:
            status_parts.append(_string(b"\x12", status.description))
        if status.status_code.value:
            status_parts += (b"\x18", _SMALL[status.status_code.value])
        parts.append(_delimited(b"\x7a", b"".join(status_parts)))
    else:
        parts.append(b"\x7a\x00")  # the SDK always sends a status, empty when unset
    parts += (b"\x85\x01", _flags(parent))  # field 16, fixed32
    return b"".join(parts)


_NAMES: dict[tuple[str, SpanKind], bytes] = {}


def _name_and_kind(name: str, kind: SpanKind) -> bytes:
    """Fields 5 and 6 of a span, remembered: a process names its spans from a short list."""
    encoded = _string(b"\x2a", name) if name else b""
    encoded += b"\x30" + _SMALL[kind.value + 1]  # the SDK's SpanKind, shifted past UNSPECIFIED
    if len(_NAMES) >= _MAX_CACHED:
        _NAMES.clear()
    _NAMES[(name, kind)] = encoded
    return encoded


_RESOURCES: dict[int, tuple[Any, bytes]] = {}
_SCOPES: dict[int, tuple[Any, bytes]] = {}


def _once(cache: dict[int, tuple[Any, bytes]], item: Any, encode: Any) -> bytes:
    """``encode(item)`` serialized, remembered for ``item`` (by identity: see encode_spans)."""
    known = cache.get(id(item))
    if known is None or known[0] is not item:
        if len(cache) >= 64:
            cache.clear()
        known = cache[id(item)] = (item, encode(item).SerializeToString())
    return known[1]


def encode_spans(spans: Sequence[ReadableSpan]) -> bytes:
    """The serialized ``ExportTraceServiceRequest`` for ``spans``: resource spans, then scope
    spans, in the order each resource and scope first appears (as the SDK's encoder groups them)."""
    # Grouped by identity first (a Resource hashes by JSON-dumping its attributes), then equal
    # resources and scopes merged: a process has one of each, so the merging loops are tiny.
    by_identity: dict[tuple[int, int], tuple[Any, Any, list[bytes]]] = {}
    for span in spans:
        resource, scope = span.resource, span.instrumentation_scope or None
        group = by_identity.get((id(resource), id(scope)))
        if group is None:
            group = by_identity[(id(resource), id(scope))] = (resource, scope, [])
        group[2].append(_span(span))
    grouped: list[tuple[Any, list[tuple[Any, list[bytes]]]]] = []
    for resource, scope, encoded in by_identity.values():
        scopes = next((s for r, s in grouped if r == resource), None)
        if scopes is None:
            scopes = []
            grouped.append((resource, scopes))
        same_scope = next((bodies for s, bodies in scopes if s == scope), None)
        if same_scope is None:
            scopes.append((scope, encoded))
        else:
            same_scope += encoded
    resource_spans = []
    for resource, scopes in grouped:
        parts = [_delimited(b"\x0a", _once(_RESOURCES, resource, _encode_resource))]
        for scope, encoded_spans in scopes:
            scope_parts = [
                _delimited(b"\x0a", _once(_SCOPES, scope, _encode_instrumentation_scope))
            ]
            scope_parts += (_delimited(b"\x12", body) for body in encoded_spans)
            if scope is not None and scope.schema_url:
                scope_parts.append(_string(b"\x1a", scope.schema_url))
            parts.append(_delimited(b"\x12", b"".join(scope_parts)))
        if resource.schema_url:
            parts.append(_string(b"\x1a", resource.schema_url))
        resource_spans.append(_delimited(b"\x0a", b"".join(parts)))
    return b"".join(resource_spans)


# --- the exporters ------------------------------------------------------------------------------


class LeanGrpcSpanExporter(GrpcExporter):
    """The SDK's OTLP/gRPC span exporter, sending ``encode_spans`` bytes as the request: its
    stub is swapped for one that takes the request already serialized."""

    def _initialize_channel_and_stub(self) -> None:
        super()._initialize_channel_and_stub()  # type: ignore[no-untyped-call]
        channel = cast(grpc.Channel, self._channel)
        raw = channel.unary_unary(
            EXPORT_METHOD,
            request_serializer=None,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )
        self._client = cast(Any, SimpleNamespace(Export=raw))

    def _translate_data(self, data: Sequence[ReadableSpan]) -> Any:
        return encode_spans(data)


class LeanHttpSpanExporter(HttpExporter):
    """The SDK's OTLP/HTTP span exporter, posting ``encode_spans`` bytes (its own ``export``
    with the encoder swapped: the same size limit, exporter metrics and client)."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            _log.warning("Exporter already shutdown, ignoring batch")
            return SpanExportResult.FAILURE
        with self._metrics.export_operation(len(spans)) as result:
            payload = encode_spans(spans)
            if _is_request_too_large(payload, self._max_request_size):
                _log.warning(
                    "Dropping span batch: serialized size %d bytes exceeds max_request_size %d",
                    len(payload),
                    self._max_request_size,
                )
                result.error = RequestPayloadTooLargeError(f"{len(payload)} bytes")
                return SpanExportResult.FAILURE
            sent = self._client.export(payload)
            if not sent.success:
                result.error = sent.error
                if sent.status_code is not None:
                    result.error_attrs = {HTTP_RESPONSE_STATUS_CODE: sent.status_code}
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

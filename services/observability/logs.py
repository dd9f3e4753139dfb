"""Structured logs: one JSON object per line when stderr is not a terminal, with the current
trace and span ids, so a log line leads to its trace and back.

Extra fields given as ``log.info(..., extra={"fields": {...}})`` become keys of the object. Notes
written by people never go into a log line at INFO (they may hold personal data).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from opentelemetry import trace


def trace_fields() -> dict[str, str]:
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
    }


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "trace", {}))
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """For a terminal: the usual line, then key=value fields and the trace id."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = {**getattr(record, "fields", {}), **getattr(record, "trace", {})}
        if extra:
            text += " " + " ".join(f"{k}={v}" for k, v in extra.items())
        return text


class _TraceIds(logging.Filter):
    """Stamps each record with the trace and span current where it was logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.trace = trace_fields()
        return True


def log_handler(stream: TextIO) -> logging.Handler:
    """A handler writing to ``stream``: JSON lines, or text when it is a terminal."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter() if stream.isatty() else JsonFormatter())
    handler.addFilter(_TraceIds())
    return handler


def configure_logging(level: str, stream: TextIO | None = None) -> logging.Handler:
    """Send every log line to ``stream`` (stderr) through ``log_handler``."""
    handler = log_handler(sys.stderr if stream is None else stream)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    return handler

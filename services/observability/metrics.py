"""Prometheus metrics of one process, in a registry of its own (no global state), and the
``/metrics`` endpoint that serves them.

Names follow Prometheus conventions: a ``ledger_`` prefix, base units (``_seconds``), counters
ending in ``_total``. Labels are bounded: gRPC service, method and status code; event type; group.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# Seconds: a local RPC takes a fraction of a millisecond, a slow one seconds.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
# Ownership lasts minutes to weeks.
TENURE_BUCKETS = tuple(
    float(m * 60) for m in (1, 5, 15, 30, 60, 120, 240, 480, 1440, 2880, 10080, 40320)
)


class Metrics:
    """Every metric the ledger, query service and projector report."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._lag: _LagCollector | None = None
        r = self.registry
        rpc_labels = ["grpc_service", "grpc_method", "grpc_code"]
        self.rpc_handled = Counter(
            "ledger_grpc_server_handled", "RPCs completed, by method and status code",
            rpc_labels, registry=r,
        )  # fmt: skip
        self.rpc_seconds = Histogram(
            "ledger_grpc_server_handling_seconds", "RPC latency on the server, by method and code",
            rpc_labels, buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.group_commit_batch = Histogram(
            "ledger_group_commit_batch_commands", "commands written per group-commit transaction",
            buckets=BATCH_BUCKETS, registry=r,
        )  # fmt: skip
        self.append_seconds = Histogram(
            "ledger_append_seconds", "time to write one append transaction (events + commands)",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.events_appended = Counter(
            "ledger_events_appended", "events appended to the ledger, by event type", ["event"],
            registry=r,
        )  # fmt: skip
        self.projector_batch_seconds = Histogram(
            "ledger_projector_batch_seconds", "time to project one batch (derive + commit)",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.projector_events = Counter(
            "ledger_projector_events", "events applied to the read models", registry=r
        )
        self.projector_position = Gauge(
            "ledger_projector_position", "last global position the read models include",
            registry=r,
        )  # fmt: skip
        self.ownership_seconds = Histogram(
            "ledger_ownership_duration_seconds",
            "length in event time of each ended group tenure, by group, when the projector applies "
            "the event that ends it",
            ["group"], buckets=TENURE_BUCKETS, registry=r,
        )  # fmt: skip

    def watch_projection(self, lag: Callable[[], ProjectionLag]) -> None:
        """Report the projector's lag, measured by ``lag`` when scraped (a later call replaces
        the source: an elected projector is built anew each time it takes the lead)."""
        if self._lag is None:
            self._lag = _LagCollector(lag)
            self.registry.register(self._lag)
        else:
            self._lag.source = lag

    def serve(self, host: str, port: int) -> MetricsEndpoint:
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        return MetricsEndpoint(server, thread)


@dataclass(frozen=True, slots=True)
class ProjectionLag:
    position: int
    head: int
    seconds: float  # age of the oldest event not yet projected; 0 when caught up

    @property
    def events(self) -> int:
        return max(self.head - self.position, 0)


class _LagCollector(Collector):
    def __init__(self, source: Callable[[], ProjectionLag]) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        try:
            lag = self.source()
        except Exception as error:  # a scrape must not fail because the database is away
            log.debug("projector lag unavailable: %s", error)
            return
        yield GaugeMetricFamily(
            "ledger_projector_lag_events", "events appended but not yet projected", lag.events
        )
        yield GaugeMetricFamily(
            "ledger_projector_lag_seconds",
            "age of the oldest event not yet projected (0 when caught up)",
            lag.seconds,
        )
        yield GaugeMetricFamily(
            "ledger_projector_head_position", "last global position in the ledger", lag.head
        )


@dataclass
class MetricsEndpoint:
    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

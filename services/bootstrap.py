"""The composition root: the only place that knows every concrete class."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ownership.v1 import audit_pb2_grpc, ledger_pb2_grpc, query_pb2, query_pb2_grpc
from services import composition
from services.audit.api import SERVICE_NAME as AUDIT_SERVICE_NAME
from services.audit.api import AuditServicer
from services.audit.checkpoints import Checkpointer, CheckpointTable
from services.audit.service import Auditor
from services.composition import new_projector
from services.import_projector import ProjectorProcess
from services.itsm.importer import CommandSink, GrpcSink, InProcessSink
from services.ledger.api.health import Check, HealthMonitor
from services.ledger.api.interceptor import ObservingInterceptor
from services.ledger.api.server import SERVICE_NAME, LedgerServer, channel
from services.ledger.api.servicer import LedgerServicer
from services.ledger.application.group_commit import GroupCommitWriter
from services.ledger.application.handler import CaseCommandHandler, utc_now
from services.ledger.application.reads import LedgerReader
from services.ledger.infrastructure.probe import ReachabilityProbe
from services.ledger.infrastructure.store import EventsourcingStore
from services.observability.measured import MeasuredEventStore
from services.observability.metrics import Metrics, MetricsEndpoint
from services.observability.tracing import Tracing, tracing_from_env
from services.projector.api import ProjectionPosition, QueryServicer
from services.projector.database import ReadModelDatabase
from services.projector.gcpacing import FrozenLongLived
from services.projector.projector import Projector
from services.projector.queries import OwnershipQueries
from services.projector.telemetry import ProjectorTelemetry, projection_lag
from services.settings import Settings

build_store = composition.build_store  # callers build everything here

QUERY_SERVICE_NAME = query_pb2.DESCRIPTOR.services_by_name["QueryService"].full_name


@dataclass
class Telemetry:
    """Traces and metrics of one process: the tracer provider, and the /metrics endpoint."""

    tracing: Tracing
    metrics: Metrics | None
    endpoint: MetricsEndpoint | None = None

    def start(self, settings: Settings) -> None:
        if self.metrics is not None and settings.metrics_port is not None:
            self.endpoint = self.metrics.serve(settings.host, settings.metrics_port)

    def stop(self) -> None:
        if self.endpoint is not None:
            self.endpoint.close()
        self.tracing.shutdown()


def build_telemetry(
    settings: Settings, service_name: str, tracing: Tracing | None = None
) -> Telemetry:
    """Tracing from the OTEL_* environment (unless given); metrics when a port is set."""
    return Telemetry(
        tracing if tracing is not None else tracing_from_env(service_name),
        Metrics() if settings.metrics_port is not None else None,
    )


@dataclass
class Ledger:
    """One running process: some of ledger service, query service and projector."""

    settings: Settings
    store: EventsourcingStore
    handler: CaseCommandHandler
    writer: GroupCommitWriter
    reader: LedgerReader
    server: LedgerServer
    readmodels: ReadModelDatabase | None = None
    projector: Projector | None = None
    telemetry: Telemetry | None = None
    health: HealthMonitor | None = None
    _projector_stop: threading.Event = field(default_factory=threading.Event)
    _projector_thread: threading.Thread | None = None
    checkpointer: Checkpointer | None = None
    _checkpointer_thread: threading.Thread | None = None

    def start(self) -> Ledger:
        if self.projector is not None:
            self._projector_thread = threading.Thread(
                target=self.projector.run, args=(self._projector_stop,), name="projector"
            )
            self._projector_thread.start()
        if self.checkpointer is not None:
            self._checkpointer_thread = threading.Thread(
                target=self.checkpointer.run, args=(self._projector_stop,), name="checkpointer"
            )
            self._checkpointer_thread.start()
        self.server.start()
        if self.telemetry is not None:
            self.telemetry.start(self.settings)
        if self.health is not None:
            self.health.start()
        return self

    def stop(self, grace: float | None = None) -> None:
        self.reader.stopping.set()  # live subscriptions end instead of holding the grace period
        if self.health is not None:
            self.health.stop()
        self.server.stop(self.settings.grace_seconds if grace is None else grace)
        self.writer.stop()  # after the server: in-flight calls still need it to finish
        self._projector_stop.set()
        self.store.wake_waiters()
        if self._projector_thread is not None:
            self._projector_thread.join(timeout=30)
        if self._checkpointer_thread is not None:
            self._checkpointer_thread.join(timeout=30)
        if self.readmodels is not None:
            self.readmodels.close()
        self.store.close()
        if self.telemetry is not None:
            self.telemetry.stop()


def build_auditor(store: EventsourcingStore) -> Auditor:
    return Auditor(store, CheckpointTable(store))


def build_checkpointer(store: EventsourcingStore) -> Checkpointer:
    return Checkpointer(store, CheckpointTable(store))


def build_projector(
    settings: Settings,
    store: EventsourcingStore,
    readmodels: ReadModelDatabase,
    telemetry: Telemetry | None = None,
) -> Projector:
    observer = None
    if telemetry is not None:
        observer = ProjectorTelemetry(telemetry.tracing.tracer(), telemetry.metrics)
    projector = new_projector(settings, store, readmodels, observer)
    if telemetry is not None and telemetry.metrics is not None:
        telemetry.metrics.watch_projection(
            lambda: projection_lag(store, lambda: projector.position, utc_now)
        )
    return projector


def build_ledger(settings: Settings, tracing: Tracing | None = None) -> Ledger:
    telemetry = build_telemetry(settings, "ownership-ledger", tracing)
    metrics = telemetry.metrics
    store = build_store(settings)
    handler = CaseCommandHandler(
        store if metrics is None else MeasuredEventStore(store, metrics), settings.limits()
    )
    writer = GroupCommitWriter(
        handler,
        max_batch=min(settings.group_commit_max_batch, settings.max_batch_commands),
        linger_seconds=settings.group_commit_linger_us / 1e6,
        writers=settings.group_commit_writers,
        on_batch=None if metrics is None else metrics.group_commit_batch.observe,
    )
    reader = LedgerReader(store, settings.limits(), max_limit=settings.read_limit)
    server = LedgerServer(
        settings.host,
        settings.port,
        settings.max_workers,
        interceptors=[ObservingInterceptor(telemetry.tracing.server_tracer(), metrics)],
    )
    checks: dict[str, Check] = {}
    if settings.runs("ledger"):
        # An import batch leaves thousands of collector-tracked objects, and every few batches
        # a full collection walked all the process's long-lived ones: freeze survivors instead.
        importing = LedgerServicer(
            handler,
            writer,
            reader,
            settings.import_batch_commands,
            after_import_batch=FrozenLongLived().after_batch,
        )
        server.add_ledger(importing)
        auditing = AuditServicer(build_auditor(store), settings.limits())
        server.add_service(
            AUDIT_SERVICE_NAME,
            lambda grpc_server: audit_pb2_grpc.add_AuditServiceServicer_to_server(
                auditing, grpc_server
            ),
        )
        checks[SERVICE_NAME] = ReachabilityProbe(store)
    readmodels = projector = None
    if settings.runs("query") or settings.runs("projector"):
        readmodels = ReadModelDatabase(settings.resolved_readmodel_url())
    if settings.runs("projector"):
        assert readmodels is not None
        projector = build_projector(settings, store, readmodels, telemetry)
    if settings.runs("query"):
        assert readmodels is not None
        queries = OwnershipQueries(readmodels, clock=handler.clock)
        position = ProjectionPosition(readmodels, projector)
        servicer = QueryServicer(queries, position, settings.overstay(), cases=reader)
        durable = ProjectionPosition(readmodels, None)  # the committed tracking row
        probe = ReachabilityProbe(store)
        checks[QUERY_SERVICE_NAME] = lambda: (
            probe() or _projection_ready(store, durable, settings.max_projector_lag_seconds)
        )
        server.add_service(
            QUERY_SERVICE_NAME,
            lambda grpc_server: query_pb2_grpc.add_QueryServiceServicer_to_server(
                servicer, grpc_server
            ),
        )
    if metrics is not None and projector is None and readmodels is not None:
        durable_position = ProjectionPosition(readmodels, None)
        metrics.watch_projection(lambda: projection_lag(store, durable_position.current, utc_now))
    ledger = Ledger(
        settings,
        store,
        handler,
        writer,
        reader,
        server,
        readmodels,
        projector,
        telemetry=telemetry,
        health=HealthMonitor(server.health, checks, settings.health_check_seconds),
    )
    if settings.runs("projector"):
        # The process that follows the global order also seals it (services/audit/checkpoints.py).
        ledger.checkpointer = build_checkpointer(store)
    return ledger


@dataclass
class ImportTarget:
    """Where an import sends its commands, and how to wait until the read models include them.

    ``make_current(last_position)`` returns False when this process cannot tell (a remote
    server's projector keeps its own read models current).
    """

    sink: CommandSink
    make_current: Callable[[int], bool]


def _is_postgres(url: str) -> bool:
    return urlsplit(url).scheme in ("postgresql", "postgres")


@contextmanager
def open_import_target(settings: Settings, via: str, target: str | None) -> Iterator[ImportTarget]:
    """``inprocess``: the application handler here, followed by a projector — in a process of
    its own on PostgreSQL (``ProjectorProcess``), in a thread of this one on SQLite.
    ``grpc``: a server's ImportEvents stream — ``target``'s, or an embedded server's (with its
    projector, which the import then waits for)."""
    if via == "inprocess" and _is_postgres(settings.database_url):
        store = build_store(settings)  # first: it makes the ledger's tables, the child finds them
        projector_process: ProjectorProcess | None = None
        try:
            projector_process = ProjectorProcess(
                settings, logging.getLevelName(logging.getLogger().getEffectiveLevel())
            )
            yield ImportTarget(
                InProcessSink(
                    CaseCommandHandler(store, settings.limits()),
                    settings.import_batch_commands,
                    # What survives a batch (cached case states) stays out of full collections.
                    FrozenLongLived().after_batch,
                ),
                lambda position: projector_process.wait_for_position(position, 24 * 3600),
            )  # fmt: skip
        finally:
            if projector_process is not None:
                projector_process.stop()
            store.close()
            gc.unfreeze()  # the pacing's frozen survivors are the collector's again
        return
    if via == "inprocess":
        store = build_store(settings)
        readmodels = ReadModelDatabase(settings.resolved_readmodel_url())
        stop = threading.Event()
        follower: threading.Thread | None = None
        try:
            handler = CaseCommandHandler(store, settings.limits())
            projector = build_projector(settings, store, readmodels)
            # The projector follows the import as it is written, as in a running ledger, so the
            # read models are current soon after the last batch instead of a whole pass later.
            follower = threading.Thread(target=projector.run, args=(stop,), name="projector")
            follower.start()
            yield ImportTarget(
                InProcessSink(handler, settings.import_batch_commands),
                lambda position: projector.wait_for_position(position, timeout=24 * 3600),
            )
        finally:
            stop.set()
            store.wake_waiters()
            if follower is not None:
                follower.join(timeout=30)
            readmodels.close()
            store.close()
        return
    if via != "grpc":
        raise ValueError(f"unknown import path {via!r}; inprocess or grpc")
    if target is not None:
        with channel(target) as chan:
            yield ImportTarget(GrpcSink(ledger_pb2_grpc.LedgerServiceStub(chan)), lambda _: False)
        return
    embedded = build_ledger(settings.model_copy(update={"port": 0, "host": "127.0.0.1"})).start()
    try:
        live = embedded.projector
        assert live is not None
        with channel(f"127.0.0.1:{embedded.server.port}") as chan:
            yield ImportTarget(
                GrpcSink(ledger_pb2_grpc.LedgerServiceStub(chan)),
                lambda position: live.wait_for_position(position, timeout=24 * 3600),
            )
    finally:
        embedded.stop(grace=1)


def _projection_ready(
    store: EventsourcingStore, position: ProjectionPosition, max_lag_seconds: float
) -> str | None:
    lag = projection_lag(store, position.current, utc_now)
    if lag.seconds > max_lag_seconds:
        return (
            f"the projector is {lag.events} events and {lag.seconds:.0f}s behind the ledger "
            f"(allowed: {max_lag_seconds:.0f}s)"
        )
    return None

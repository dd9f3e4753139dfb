"""The ``ledger`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from ownership.v1 import ledger_pb2 as pb
from ownership.v1 import ledger_pb2_grpc, query_pb2_grpc
from ownership.v1 import query_pb2 as qpb
from services.audit import cli as audit_cli
from services.bootstrap import (
    build_checkpointer,
    build_ledger,
    build_projector,
    build_store,
    build_telemetry,
    open_import_target,
)
from services.itsm.importer import import_log as run_import
from services.itsm.mapping import PRESETS, load_mapping
from services.ledger.api.server import channel
from services.ledger.application.reads import LedgerReader
from services.observability.logs import configure_logging
from services.processes import child_logging, run_processes, wait_for_stop_signal
from services.projector.api import timeline_entry
from services.projector.credit import POLICIES
from services.projector.database import ReadModelDatabase
from services.projector.gcpacing import FrozenLongLived
from services.projector.leadership import run_elected
from services.projector.projector import rebuild
from services.projector.telemetry import handoff_timeline
from services.reports.figures import ownership_figures
from services.settings import Settings

log = logging.getLogger("ledger")


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if args.database_url:
        overrides["database_url"] = args.database_url
    if getattr(args, "port", None) is not None:
        overrides["port"] = args.port
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if getattr(args, "services", None):
        overrides["services"] = args.services
    if getattr(args, "processes", None):
        overrides["processes"] = args.processes
    if getattr(args, "metrics_port", None) is not None:
        overrides["metrics_port"] = args.metrics_port
    if getattr(args, "readmodel_url", None):
        overrides["readmodel_url"] = args.readmodel_url
    return Settings(**overrides)


def serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings.processes > 1:
        return serve_processes(settings)
    ledger = build_ledger(settings).start()
    log.info(
        "ledger serving on %s:%d (database %s)",
        settings.host,
        ledger.server.port,
        _redacted(settings.database_url),
    )
    if ledger.telemetry is not None and ledger.telemetry.endpoint is not None:
        log.info("metrics on %s:%d/metrics", settings.host, ledger.telemetry.endpoint.port)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    log.info("stopping: finishing in-flight calls (grace %.1fs)", settings.grace_seconds)
    ledger.stop()
    log.info("stopped")
    return 0


def serve_processes(settings: Settings) -> int:
    """``settings.processes`` servers on one port; only the first runs the projector."""
    if not settings.database_url.startswith(("postgresql:", "postgres:")):
        log.error("--processes above 1 needs PostgreSQL: SQLite is one process's database")
        return 2
    others = ",".join(s for s in ("ledger", "query") if settings.runs(s))
    per_process = [
        settings.model_copy(update=_child_update(settings, index, others))
        for index in range(settings.processes)
    ]
    log.info("starting %d ledger processes (database %s)", settings.processes,
             _redacted(settings.database_url))  # fmt: skip
    return run_processes(
        settings.processes,
        settings.host,
        settings.port,
        _ledger_process,
        [(s.model_dump(), log.getEffectiveLevel()) for s in per_process],
        "ledger",
        settings.grace_seconds,
    )


def _child_update(settings: Settings, index: int, others: str) -> dict[str, Any]:
    update: dict[str, Any] = {} if index == 0 else {"services": others}
    if settings.metrics_port:  # one /metrics per process, on consecutive ports
        update["metrics_port"] = settings.metrics_port + index
    return update


def _ledger_process(
    index: int, port: int, ready: Connection, fields: dict[str, Any], log_level: int
) -> None:
    """One of ``serve_processes``'s children."""
    child_logging(log_level)
    settings = Settings(**fields).model_copy(update={"port": port})
    ledger = build_ledger(settings).start()
    log.info("process %d (pid %d) serving %s", index, os.getpid(), settings.services)
    ready.send(ledger.server.port)
    ready.close()
    wait_for_stop_signal()
    ledger.stop()


def project(args: argparse.Namespace) -> int:
    """Run the projector alone (production), or rebuild every read model from position 0."""
    settings = _settings(args)
    # The projector reads the ledger on one thread: a pool sized for gRPC workers would hold
    # dozens of idle PostgreSQL connections per replica.
    store = build_store(settings, pool_size=2)
    readmodels = ReadModelDatabase(settings.resolved_readmodel_url())
    try:
        if args.rebuild:
            started = time.monotonic()
            count = rebuild(
                store,
                readmodels,
                list(POLICIES.values()),
                settings.projector_batch_size,
                gc_pacing=FrozenLongLived(),
            )
            elapsed = time.monotonic() - started
            print(f"rebuilt read models from {count} events in {elapsed:.1f}s")
            return 0
        telemetry = build_telemetry(settings, "ownership-projector")
        telemetry.start(settings)
        if telemetry.endpoint is not None:
            log.info("metrics on %s:%d/metrics", settings.host, telemetry.endpoint.port)
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        try:
            if readmodels.is_postgres:
                # Any number of replicas: the one holding the leader lock applies, the others wait.
                run_elected(
                    settings.resolved_readmodel_url(),
                    lambda fenced: build_projector(settings, store, fenced, telemetry),
                    stop,
                    poll_seconds=settings.projector_leader_poll_seconds,
                    wake=store.wake_waiters,
                    # The leader also seals the audit checkpoints of the global order, as `serve`
                    # does.
                    alongside=[build_checkpointer(store).run],
                )
                return 0
            projector = build_projector(settings, store, readmodels, telemetry)
            log.info("projector following from position %d", projector.position)
            sealing = threading.Thread(
                target=build_checkpointer(store).run, args=(stop,), name="checkpointer"
            )
            sealing.start()
            projector.run(stop)
            sealing.join(timeout=30)
            log.info("projector stopped at position %d", projector.position)
            return 0
        finally:
            telemetry.stop()
    finally:
        readmodels.close()
        store.close()


def import_log(args: argparse.Namespace) -> int:
    """Import a real ITSM log through the ledger's write path, then bring the read models current."""
    settings = _settings(args)
    mapping = load_mapping(args.format, args.mapping)
    started = time.monotonic()
    with open_import_target(settings, args.via, args.target) as target:
        report = run_import(
            Path(args.path), mapping, target.sink, f"import {mapping.name}", args.whole_file
        )
        imported = time.monotonic()
        current = target.make_current(report.sent.last_position)
    finished = time.monotonic()
    summary = report.as_dict() | {
        "via": args.via,
        "import_seconds": round(imported - started, 3),
        "read_models_seconds": round(finished - imported, 3) if current else None,
        "total_seconds": round(finished - started, 3),
    }
    print(json.dumps(summary, indent=2))
    return 0


def report(args: argparse.Namespace) -> int:
    """The ownership figures from the read models: JSON (stdout or --json) and an HTML page."""
    settings = _settings(args)
    readmodels = ReadModelDatabase(settings.resolved_readmodel_url())
    try:
        figures = ownership_figures(readmodels, top_n=args.top)
        text = json.dumps(figures, indent=2)
        if args.json:
            Path(args.json).write_text(text + "\n")
        else:
            print(text)
        if args.html:
            from services.reports.html import write_html_report  # matplotlib only when asked

            write_html_report(readmodels, figures, Path(args.html))
    finally:
        readmodels.close()
    return 0


def _redacted(url: str) -> str:
    if "@" in url and ":" in url.split("@", 1)[0].split("//", 1)[-1]:
        scheme, rest = url.split("//", 1)
        user = rest.split(":", 1)[0]
        return f"{scheme}//{user}:***@{rest.split('@', 1)[1]}"
    return url


def _ts(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def play_demo(stub: ledger_pb2_grpc.LedgerServiceStub, case_id: str) -> list[pb.Event]:
    """The story of one case, told through the public API; returns the case's history."""
    start = datetime.now(UTC) - timedelta(hours=3)

    def common(step: int, actor: str, minutes: int) -> dict[str, Any]:
        return {
            "case_id": case_id,
            "command_id": f"{case_id}/{step}",
            "actor": actor,
            "occurred_at": _ts(start + timedelta(minutes=minutes)),
        }

    stub.Assign(
        pb.AssignRequest(
            **common(1, "dispatcher", 0),
            owner=pb.Owner(agent_id="alice", group_id="service-desk"),
            tier=pb.TIER_L1,
            note="Customer cannot log in to the billing portal",
        )
    )
    stub.Transfer(
        pb.TransferRequest(
            **common(2, "alice", 25),
            to_owner=pb.Owner(agent_id="bob", group_id="identity-l2"),
            reason=pb.TRANSFER_REASON_ESCALATION,
            tier=pb.TIER_L2,
            note="SSO assertion rejected; briefed Bob by phone",
            eta=_ts(start + timedelta(minutes=40)),
            warm=True,
        )
    )
    stub.JoinSwarm(
        pb.JoinSwarmRequest(
            **common(3, "bob", 50),
            agent_id="carol",
            group_id="platform-l3",
            role=pb.SWARM_ROLE_CONSULTANT,
            note="certificate rotation expert",
        )
    )
    stub.Pause(
        pb.PauseRequest(
            **common(4, "bob", 80),
            reason=pb.PAUSE_REASON_AWAITING_CUSTOMER,
            note="asked the customer to clear cached credentials",
        )
    )
    stub.Resume(pb.ResumeRequest(**common(5, "bob", 130), note="customer replied"))
    stub.Resolve(
        pb.ResolveRequest(
            **common(6, "bob", 150), resolution_code="config-fix", note="IdP certificate renewed"
        )
    )
    return list(stub.ReadCase(pb.ReadCaseRequest(case_id=case_id)).events)


def describe(event: pb.Event) -> str:
    kind = event.WhichOneof("payload") or "?"
    occurred = event.occurred_at.ToDatetime(tzinfo=UTC)
    return (
        f"#{event.position:<5} v{event.version:<3} {occurred:%Y-%m-%d %H:%M} "
        f"{kind:<13} {_detail(kind, getattr(event, kind))}  [by {event.actor}]"
    )


def _detail(kind: str, body: Any) -> str:
    match kind:
        case "assigned":
            return f"owner {_owner(body.owner)} tier {pb.Tier.Name(body.tier)}"
        case "transferred":
            return (
                f"{_owner(body.from_owner)} -> {_owner(body.to_owner)} "
                f"({pb.TransferReason.Name(body.reason)}, {'warm' if body.warm else 'cold'}, "
                f"tier {pb.Tier.Name(body.to_tier)}, eta {body.eta.ToDatetime():%H:%M})"
            )
        case "swarm_joined":
            return f"{body.agent_id} as {pb.SwarmRole.Name(body.role)}"
        case "swarm_left":
            return f"{body.agent_id} ({pb.SwarmExit.Name(body.cause)})"
        case "paused":
            return str(pb.PauseReason.Name(body.reason))
        case "resumed":
            return f"after {pb.PauseReason.Name(body.reason)}"
        case "resolved":
            return f"by {_owner(body.resolver)} ({body.resolution_code})"
        case _:
            return str(body.reason)


def _owner(owner: pb.Owner) -> str:
    return f"{owner.agent_id or '-'}@{owner.group_id or '-'}"


def demo(args: argparse.Namespace) -> int:
    case_id = args.case_id or f"DEMO-{uuid.uuid4().hex[:8].upper()}"
    embedded = None
    target = args.target
    if target is None:
        settings = _settings(args).model_copy(update={"port": 0, "host": "127.0.0.1"})
        embedded = build_ledger(settings).start()
        target = f"127.0.0.1:{embedded.server.port}"
        print(f"embedded ledger on {target}, database {_redacted(settings.database_url)}")
    try:
        with channel(target) as chan:
            history = play_demo(ledger_pb2_grpc.LedgerServiceStub(chan), case_id)
        print(f"history of {case_id}:")
        for event in history:
            print("  " + describe(event))
    finally:
        if embedded is not None:
            embedded.stop(grace=1)
    return 0


def trace_case(args: argparse.Namespace) -> int:
    """Print a case's handoff timeline with the trace and span id of each event's request."""
    if args.target:
        with channel(args.target) as chan:
            answer = query_pb2_grpc.QueryServiceStub(chan).GetHandoffTimeline(
                qpb.GetHandoffTimelineRequest(case_id=args.case_id), timeout=30
            )
        entries = list(answer.entries)
    else:
        settings = _settings(args)
        store = build_store(settings)
        try:
            reader = LedgerReader(store, settings.limits(), max_limit=settings.read_limit)
            found = handoff_timeline(lambda after: reader.read_case(args.case_id, after, 0))
            entries = [timeline_entry(r) for r in found]
        finally:
            store.close()
    print(f"handoffs of {args.case_id}:")
    for entry in entries:
        traced = f"trace {entry.trace_id} span {entry.span_id}" if entry.trace_id else "untraced"
        print(f"  {describe(entry.event)}  {traced}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ledger", description=__doc__)
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_database(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--database-url",
            help="sqlite:///PATH or postgresql://USER@HOST:PORT/DB (env LEDGER_DATABASE_URL)",
        )
        return p

    serve_parser = with_database(sub.add_parser("serve", help="run the gRPC ledger service"))
    serve_parser.add_argument("--port", type=int, help="gRPC port (env LEDGER_PORT, default 50051)")
    serve_parser.add_argument("--host", help="listen address (env LEDGER_HOST, default 0.0.0.0)")
    serve_parser.add_argument(
        "--services",
        help="comma-separated: ledger, query, projector (env LEDGER_SERVICES, default all three)",
    )
    serve_parser.add_argument(
        "--processes",
        type=int,
        help="server processes sharing the port, PostgreSQL only (env LEDGER_PROCESSES, default 1)",
    )
    serve_parser.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus metrics on this port (env LEDGER_METRICS_PORT; 0 picks one)",
    )
    serve_parser.set_defaults(run=serve)

    project_parser = with_database(
        sub.add_parser("project", help="run the projector that keeps the read models current")
    )
    project_parser.add_argument(
        "--readmodel-url", help="read-model database (env LEDGER_READMODEL_URL)"
    )
    project_parser.add_argument(
        "--rebuild",
        action="store_true",
        help="replay from position 0 into fresh tables and swap them in (stop live projectors first)",
    )
    project_parser.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus metrics on this port (env LEDGER_METRICS_PORT; 0 picks one)",
    )
    project_parser.set_defaults(run=project)

    trace_parser = with_database(
        sub.add_parser("trace", help="print a case's handoffs with their trace and span ids")
    )
    trace_parser.add_argument("case_id", help="the case")
    trace_parser.add_argument(
        "--target", help="host:port of a running QueryService (default: read the database)"
    )
    trace_parser.set_defaults(run=trace_case)

    demo_parser = with_database(
        sub.add_parser("demo", help="play a short ownership story through the gRPC API")
    )
    demo_parser.add_argument("--target", help="host:port of a running ledger (default: embedded)")
    demo_parser.add_argument("--case-id", help="case id to use (default: a fresh one)")
    demo_parser.set_defaults(run=demo)
    audit_cli.register(sub, with_database, _settings)

    import_parser = with_database(
        sub.add_parser("import", help="import a real ITSM log (XES or CSV) through the ledger")
    )
    import_parser.add_argument("format", choices=sorted(PRESETS), help="the log's column mapping")
    import_parser.add_argument("path", help="the log file (.xes, .xes.gz, .csv or .csv.gz)")
    import_parser.add_argument(
        "--via", choices=["inprocess", "grpc"], default="inprocess",
        help="the application handler in this process, or a server's ImportEvents stream",
    )  # fmt: skip
    import_parser.add_argument(
        "--target", help="with --via grpc: host:port of a running ledger (default: embedded)"
    )
    import_parser.add_argument("--mapping", help="JSON file overriding fields of the mapping")
    import_parser.add_argument(
        "--whole-file", action="store_true",
        help="plan the whole log before the first write (an XES log otherwise streams, trace by "
        "trace; needed only where a case comes back in a later trace with earlier rows)",
    )  # fmt: skip
    import_parser.add_argument(
        "--readmodel-url", help="read-model database (env LEDGER_READMODEL_URL)"
    )
    import_parser.set_defaults(run=import_log)

    report_parser = with_database(
        sub.add_parser("report", help="ownership figures from the read models (JSON, HTML)")
    )
    report_parser.add_argument("--json", help="write the figures here (default: stdout)")
    report_parser.add_argument("--html", help="write an HTML report with plots here")
    report_parser.add_argument("--top", type=int, default=10, help="entries per ranking")
    report_parser.add_argument(
        "--readmodel-url", help="read-model database (env LEDGER_READMODEL_URL)"
    )
    report_parser.set_defaults(run=report)

    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    started = time.monotonic()
    status: int = args.run(args)
    log.debug("%s finished in %.2fs", args.command, time.monotonic() - started)
    return status


if __name__ == "__main__":
    sys.exit(main())

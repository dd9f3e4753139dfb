"""Tracing overhead on the unary write path: Transfer RPCs/s with tracing on against off.

Both sides are bench.write_bench's own unary runs (``ledger_runs``: a fresh scratch PostgreSQL
database, pre-assigned cases, a grpc.aio client with ``--concurrency`` calls in flight in a
separate process), alternating on/off in every round (which goes first alternates too).

The headline is the median over rounds of each round's on/off ratio: the two runs of a round
are seconds apart, so they share most of whatever else the box is doing, which a ratio of
medians would not pair up. Below it, the server CPU per call (all server processes, warm-up
included) on and off, whose difference is what tracing costs per call, independent of how
busy the box is; and the spans the sink received against the Transfer calls the servers
answered (each must be exported: no sampling, nothing dropped).

- off: no OTEL_* variables, as a default deployment runs (the no-op tracer).
- on: configured only through the standard variables, as production would be: the OTLP/gRPC
  exporter behind the SDK's batch span processor, exporting every server span to a sink
  collector in a separate process (an OTLP TraceService that counts spans and drops them). So
  "on" includes span creation, context propagation into the stored events, batching,
  serialization and the export calls; not a real collector's own cost.

Run: python -m bench.tracing_bench [--repeat 5] [--seconds 5] [--quick]
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from bench.common import median, print_table, write_json
from bench.write_bench import LOGS, ROOT, ledger_runs, parse_args

GOAL = 0.9


# --- the sink collector (runs in its own process) -----------------------------------------------


class _Sink(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.spans = 0
        self.requests = 0
        self._lock = threading.Lock()

    def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 (the OTLP method name)
        count = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
        with self._lock:
            self.spans += count
            self.requests += 1
        return trace_service_pb2.ExportTraceServiceResponse()


def sink_main() -> None:
    """Serve OTLP/gRPC on a free port, print it, and on SIGTERM print what arrived."""
    sink = _Sink()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(sink, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    server.stop(1)
    print(json.dumps({"spans": sink.spans, "requests": sink.requests}), flush=True)


class SinkProcess:
    def __init__(self) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "bench.tracing_bench", "_sink"],
            stdout=subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert self.popen.stdout is not None
        self.port = int(self.popen.stdout.readline())

    def stop(self) -> dict[str, int]:
        self.popen.send_signal(signal.SIGTERM)
        out, _ = self.popen.communicate(timeout=30)
        received: dict[str, int] = json.loads(out.decode().strip().splitlines()[-1])
        return received


# --- the comparison -----------------------------------------------------------------------------


def traced_env(port: int) -> dict[str, str]:
    return {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{port}",
        "OTEL_SERVICE_NAME": "ledger-bench",
    }


def run(args: Any, round_: int, env: dict[str, str]) -> dict[str, Any]:
    """One bench.write_bench unary run with ``env`` in force while the ledger is built."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return ledger_runs(args, round_)
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def server_cpu_per_call(run: dict[str, Any]) -> float:
    """CPU seconds of all server processes per call answered, warm-up included (as is its CPU)."""
    return float(run["server_cpu_s"]) / max(int(run["calls"]) + int(run["errors"]), 1)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_sink"]:
        sink_main()
        return {}
    args = parse_args(argv)
    if any(k.startswith("OTEL_") for k in os.environ):
        raise SystemExit("unset the OTEL_* variables first: 'off' must mean no tracing")
    hi = f"@{args.concurrency}"
    LOGS.mkdir(parents=True, exist_ok=True)
    sink = SinkProcess()
    off: list[dict[str, Any]] = []
    on: list[dict[str, Any]] = []
    try:
        for i in range(args.repeat):
            order = [("off", off, {}), ("on", on, traced_env(sink.port))]
            for _, into, env in order if i % 2 == 0 else order[::-1]:
                into.append(run(args, i, env))
            last_on, last_off = on[-1], off[-1]
            print(
                f"round {i + 1}: off {last_off[hi]['per_s']:,.0f}/s, on {last_on[hi]['per_s']:,.0f}/s"
                f" ({last_on[hi]['per_s'] / last_off[hi]['per_s']:.2f}); server CPU/call "
                f"off {server_cpu_per_call(last_off[hi]) * 1e3:.3f} ms, "
                f"on {server_cpu_per_call(last_on[hi]) * 1e3:.3f} ms; "
                f"@1 p50 off {last_off['@1']['p50_ms']:.2f} ms, on {last_on['@1']['p50_ms']:.2f} ms",
                flush=True,
            )
    finally:
        received = sink.stop()
    # Every call the servers answered has a span: those that completed and those that failed.
    traced_calls = sum(r[k]["calls"] + r[k]["errors"] for r in on for k in (hi, "@1"))
    off_rate, on_rate = median([r[hi]["per_s"] for r in off]), median([r[hi]["per_s"] for r in on])
    ratios = [n[hi]["per_s"] / f[hi]["per_s"] for n, f in zip(on, off, strict=True)]
    ratio = median(ratios)
    off_cpu, on_cpu = (median([server_cpu_per_call(r[hi]) for r in runs]) for runs in (off, on))
    off_p50, on_p50 = (median([r["@1"]["p50_ms"] for r in runs]) for runs in (off, on))
    met = "met" if ratio >= GOAL else "MISSED"
    print_table(
        f"tracing overhead (PostgreSQL, medians of {args.repeat} interleaved rounds)",
        [
            (f"Transfer RPCs/s {hi}, on/off per round", f"{ratio:.2f}",
             f"rounds {min(ratios):.2f}..{max(ratios):.2f}", f"goal >= {GOAL}: {met}"),
            (f"Transfer RPCs/s {hi}, tracing on (OTLP/gRPC to a sink)", f"{on_rate:,.0f}",
             f"tracing off {off_rate:,.0f}/s", f"{on_rate / off_rate:.2f} (ratio of medians)"),
            (f"server CPU per Transfer {hi}, tracing on", f"{on_cpu * 1e3:.3f} ms",
             f"off {off_cpu * 1e3:.3f} ms", f"+{(on_cpu - off_cpu) * 1e6:,.0f} us per call"),
            ("Transfer latency p50 @1", f"{on_p50:.2f} ms", f"off {off_p50:.2f} ms",
             f"{on_p50 / off_p50:.2f}x"),
        ],
    )  # fmt: skip
    missing = traced_calls - received["spans"]
    print(
        f"spans the sink received: {received['spans']:,} in {received['requests']:,} exports, "
        f"for {traced_calls:,} Transfer calls the traced servers answered"
        + (" (every one)" if missing == 0 else f" ({missing:+,} missing)")
    )
    figures = {
        "config": dict(vars(args)),
        "off": off,
        "on": on,
        "sink": received,
        "traced_calls": traced_calls,
        "medians": {"off_rpcs_per_s": off_rate, "on_rpcs_per_s": on_rate},
        "ratio_on_vs_off": ratio,
        "round_ratios": ratios,
        "server_cpu_per_call_s": {"off": off_cpu, "on": on_cpu},
    }
    print(f"raw figures: {write_json('tracing', figures)}")
    return figures


if __name__ == "__main__":
    main()

"""The write benchmark's baseline server: a trivial echo method on the ledger's own server class.

Same ``LedgerServer`` (thread pool, ``max_workers``, concurrency limit, health service), and with
``--processes N`` the same multi-process runner as ``ledger serve --processes N``, so the echo
baseline and the ledger differ only in what the method does.

Run: python -m bench.echo --port 0 --max-workers 16 --processes 2
"""

from __future__ import annotations

import argparse
import logging
from multiprocessing.connection import Connection

import grpc

from services.ledger.api.server import LedgerServer
from services.processes import (
    LOG_FORMAT,
    child_logging,
    run_processes,
    wait_for_stop_signal,
)

ECHO_SERVICE = "bench.Echo"
ECHO_METHOD = f"/{ECHO_SERVICE}/Echo"

log = logging.getLogger("echo")


def start_echo(host: str, port: int, max_workers: int) -> LedgerServer:
    """The ledger's server class serving one method that returns the request bytes."""
    server = LedgerServer(host, port, max_workers)
    handler = grpc.method_handlers_generic_handler(
        ECHO_SERVICE,
        {
            "Echo": grpc.unary_unary_rpc_method_handler(
                lambda request, context: request,
                request_deserializer=None,
                response_serializer=None,
            )
        },
    )
    server.add_service(ECHO_SERVICE, lambda s: s.add_generic_rpc_handlers((handler,)))
    server.start()
    return server


def _echo_process(index: int, port: int, ready: Connection, host: str, max_workers: int) -> None:
    child_logging(logging.INFO)
    server = start_echo(host, port, max_workers)
    ready.send(server.port)
    ready.close()
    wait_for_stop_signal()
    server.stop(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-workers", type=int, default=32)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    if args.processes > 1:
        return run_processes(
            args.processes,
            args.host,
            args.port,
            _echo_process,
            [(args.host, args.max_workers)] * args.processes,
            "echo",
            grace_seconds=1,
        )
    server = start_echo(args.host, args.port, args.max_workers)
    log.info("echo serving on %s:%d (1 process)", args.host, server.port)
    wait_for_stop_signal()
    server.stop(1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

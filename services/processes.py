"""Several server processes on one port: the kernel spreads connections across them (SO_REUSEPORT).

One Python process runs gRPC, decoding and deciding under one GIL; several processes use several
cores. Each is a whole server with its own group-commit writer. They stay correct together because
every append re-checks case versions under the events table lock (a lost race is decided again,
never stored twice), command ids are unique in the database, and positions are drawn under the
same lock.

The parent reserves the port, starts the children (``spawn``: gRPC must not be forked), logs
``ledger serving on HOST:PORT`` once every child answers, forwards SIGTERM/SIGINT and, should any
child die, stops the rest and exits non-zero so a supervisor restarts the whole set.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
from collections.abc import Callable, Sequence
from multiprocessing.process import BaseProcess
from typing import Any

from services.observability.logs import configure_logging

log = logging.getLogger("ledger")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
READY_TIMEOUT = 120.0  # seconds for every child to report its server started

# A child: (index, port, ready pipe, *args) -> runs a server on ``port`` until SIGTERM/SIGINT,
# sending the port it serves on through ``ready`` once it accepts calls.
Child = Callable[..., None]


def reserve_port(host: str, port: int) -> socket.socket:
    """Bind ``host:port`` (0: any free port) with SO_REUSEPORT and keep it, unlistened, so the
    children can bind it too and nobody else can take it meanwhile."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host.strip("[]"), port))
    return sock


def wait_for_stop_signal() -> None:
    """Block until SIGTERM or SIGINT."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()


def run_processes(
    count: int,
    host: str,
    port: int,
    child: Child,
    child_args: Sequence[Sequence[Any]],
    name: str,
    grace_seconds: float,
) -> int:
    """Run ``count`` children serving ``host:port``; return when they are all stopped.

    ``child_args[i]`` are the extra arguments of child ``i``.
    """
    context = multiprocessing.get_context("spawn")
    with reserve_port(host, port) as reserved:
        port = reserved.getsockname()[1]
        children: list[BaseProcess] = []
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        try:
            # One after another: the first creates the tables, which must not run concurrently
            # (the library's CREATE TYPE races), and the next ones find them made.
            for index in range(count):
                receiver, sender = context.Pipe(duplex=False)
                process = context.Process(
                    target=child,
                    args=(index, port, sender, *child_args[index]),
                    name=f"{name}-{index}",
                )
                process.start()
                sender.close()
                children.append(process)
                if not receiver.poll(READY_TIMEOUT):
                    log.error("%s did not start within %.0fs", process.name, READY_TIMEOUT)
                    return 1
                receiver.recv()
            log.info("%s serving on %s:%d (%d processes)", name, host, port, count)
            while not stop.wait(0.5):
                dead = [p for p in children if not p.is_alive()]
                if dead:
                    log.error("%s exited (status %s): stopping", dead[0].name, dead[0].exitcode)
                    return 1
            return 0
        except EOFError:
            log.error("a %s process exited before it started serving", name)
            return 1
        finally:
            _stop_children(children, grace_seconds)


def _stop_children(children: list[BaseProcess], grace_seconds: float) -> None:
    for process in children:
        if process.is_alive() and process.pid is not None:
            process.terminate()  # SIGTERM: the child's graceful stop
    for process in children:
        process.join(grace_seconds + 10)
        if process.is_alive():
            log.error("%s did not stop in time: killing it", process.name)
            process.kill()
            process.join(10)


def child_logging(level: int) -> None:
    """Spawned children start with no logging configuration: give them the parent's."""
    configure_logging(logging.getLevelName(level))

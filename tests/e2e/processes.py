"""`ledger serve` as a child process: started on a port the OS picks, ready once health says so.

The child is told ``--port 0``; the port it got is read back from its log line
``ledger serving on HOST:PORT``. Readiness is the standard gRPC health check answering SERVING.
Every wait is bounded, and ``running_ledger`` kills the child on the way out whatever happened.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVING_LINE = re.compile(rb"ledger serving on \S+:(\d+)")


def ledger_executable() -> str:
    beside_python = Path(sys.executable).with_name("ledger")
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("ledger")
    if found is None:
        raise RuntimeError("the `ledger` console script is not installed")
    return found


class LedgerProcess:
    """One running `ledger serve` child."""

    def __init__(self, popen: subprocess.Popen[bytes], log_path: Path) -> None:
        self.popen = popen
        self.log_path = log_path
        self.port = 0

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def running(self) -> bool:
        return self.popen.poll() is None

    def sigterm(self) -> None:
        if self.running():
            self.popen.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int | None:
        """The exit status, or None if the child is still running after ``timeout`` seconds."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.running():
            self.popen.kill()
        self.wait(10)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        self.port = self._wait_for_port(deadline)
        self._wait_for_serving(deadline)

    def _wait_for_port(self, deadline: float) -> int:
        while time.monotonic() < deadline:
            match = SERVING_LINE.search(self.log_path.read_bytes())
            if match:
                return int(match.group(1))
            self._fail_if_exited()
            time.sleep(0.05)
        raise TimeoutError(f"ledger pid {self.pid} never logged its port:\n{self.log()}")

    def _wait_for_serving(self, deadline: float) -> None:
        last: object = None
        with grpc.insecure_channel(self.target) as chan:
            health = health_pb2_grpc.HealthStub(chan)
            while time.monotonic() < deadline:
                self._fail_if_exited()
                try:
                    answer = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                    if answer.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                    last = answer.status
                except grpc.RpcError as error:
                    last = error.code()
                time.sleep(0.05)
        raise TimeoutError(f"ledger on {self.target} not SERVING (last: {last}):\n{self.log()}")

    def _fail_if_exited(self) -> None:
        status = self.popen.poll()
        if status is not None:
            raise RuntimeError(f"ledger exited early with status {status}:\n{self.log()}")


def start_ledger_process(
    database_url: str,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    ready_timeout: float = 30.0,
    args: Sequence[str] = (),
) -> LedgerProcess:
    """Start `ledger serve` on ``database_url`` (plus ``args``) and return once it answers
    SERVING."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    child_env.update(env or {})
    command = [
        ledger_executable(),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--database-url",
        database_url,
        *args,
    ]
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=child_env
        )
    process = LedgerProcess(popen, log_path)
    try:
        process.wait_ready(ready_timeout)
    except BaseException:
        process.kill()
        raise
    return process


@contextmanager
def running_ledger(
    database_url: str,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    ready_timeout: float = 30.0,
    args: Sequence[str] = (),
) -> Iterator[LedgerProcess]:
    """A ready `ledger serve` child, killed on exit if it is still running."""
    process = start_ledger_process(database_url, log_path, env, ready_timeout, args)
    try:
        yield process
    finally:
        process.kill()


def child_pids(parent: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == parent:
                found.add(int(entry.name))
    return found


def processes_with_connections(parent: int, port: int) -> set[int]:
    """The children of ``parent`` holding an established connection on local ``port``."""
    established = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                established.add(f"socket:[{fields[9]}]")
    serving = set()
    for pid in child_pids(parent):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) in established:
                    serving.add(pid)
                    break
            except OSError:
                continue
    return serving

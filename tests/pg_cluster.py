"""Throwaway PostgreSQL servers from the machine's own binaries: a primary, a synchronous
streaming standby, a scripted promote, a SIGKILL, base backups.

Tests run as root, PostgreSQL refuses to, so every server command runs as the ``postgres`` user
(``runuser``) in a temporary directory that user owns. Ports are picked free on 127.0.0.1, never
5432. ``Cluster`` is a context manager: on the way out every server it started is stopped (then
killed by pid if need be) and the directory removed, whatever happened in between.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import psycopg

PG_BIN = Path(os.environ.get("LEDGER_PG_BIN", "/usr/lib/postgresql/15/bin"))
SERVER_USER = "postgres"

# Shared by every node (a base backup copies it to the standby). fsync is off: the tests kill
# processes, not machines, so the OS page cache survives; durability across a failover comes
# from synchronous replication, which is on.
SETTINGS = """
listen_addresses = '127.0.0.1'
wal_level = replica
max_wal_senders = 5
max_replication_slots = 5
hot_standby = on
synchronous_commit = on
synchronous_standby_names = 'FIRST 1 (standby1)'
wal_sender_timeout = 5s
wal_receiver_status_interval = 1s
fsync = off
full_page_writes = on
max_connections = 100
shared_buffers = 32MB
log_min_messages = warning
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(*command: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = [str(part) for part in command]
    if os.geteuid() == 0:
        argv = ["runuser", "-u", SERVER_USER, "--", *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return done


@dataclass
class Node:
    name: str
    datadir: Path
    port: int
    running: bool = False

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def conninfo(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname} connect_timeout=3"

    def postmaster_pid(self) -> int:
        return int((self.datadir / "postmaster.pid").read_text().split()[0])

    def processes(self) -> list[int]:
        """The postmaster and its children (backends, WAL sender/receiver, background workers)."""
        postmaster = self.postmaster_pid()
        children = Path(f"/proc/{postmaster}/task/{postmaster}/children")
        kids = [int(p) for p in children.read_text().split()] if children.exists() else []
        return [postmaster, *kids]


class Cluster:
    """Servers in one temporary directory; stopped and removed on exit."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="ledger-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, SERVER_USER, SERVER_USER)
        self.nodes: list[Node] = []

    def __enter__(self) -> Cluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- making servers ------------------------------------------------------------------------

    def init_primary(self, name: str = "primary") -> Node:
        node = Node(name, self.root / name, free_port())
        _as_server_user(
            PG_BIN / "initdb", "-D", node.datadir, "-U", "postgres", "--auth=trust", "--no-sync"
        )
        with (node.datadir / "postgresql.conf").open("a") as conf:
            conf.write(SETTINGS)
        self.nodes.append(node)
        self.start(node)
        return node

    def base_backup(self, source: Node, name: str, *, standby: bool) -> Node:
        """A copy of ``source`` made with pg_basebackup: a streaming standby, or (standby=False)
        an independent server — what a restore from a base backup gives."""
        node = Node(name, self.root / name, free_port())
        command: list[str | Path] = [
            PG_BIN / "pg_basebackup",
            "-d",
            f"{source.conninfo()} application_name={name}",
            "-D",
            node.datadir,
            "-X",
            "stream",
            "--checkpoint=fast",
            "--no-sync",
        ]
        if standby:
            command.append("-R")  # standby.signal + primary_conninfo naming this standby
        _as_server_user(*command)
        if not standby:
            # A restored server is nobody's primary yet: it waits for no synchronous standby.
            with (node.datadir / "postgresql.conf").open("a") as conf:
                conf.write("synchronous_standby_names = ''\n")
        self.nodes.append(node)
        self.start(node)
        return node

    def start(self, node: Node) -> None:
        _as_server_user(
            PG_BIN / "pg_ctl",
            "-D",
            node.datadir,
            "-l",
            self.root / f"{node.name}.log",
            "-o",
            f"-p {node.port} -k {self.root}",
            "-w",
            "-t",
            "60",
            "start",
        )
        node.running = True

    # --- replication and failover --------------------------------------------------------------

    def wait_synchronous(self, primary: Node, standby: Node, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        with psycopg.connect(primary.conninfo(), autocommit=True) as conn:
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT sync_state FROM pg_stat_replication WHERE application_name = %s",
                    (standby.name,),
                ).fetchone()
                if row and row[0] == "sync":
                    return
                time.sleep(0.1)
        raise TimeoutError(f"{standby.name} never became a synchronous standby")

    def kill(self, node: Node) -> None:
        """SIGKILL the server and all its processes at once, as a crashed machine would stop."""
        for pid in node.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        node.running = False

    def promote(self, node: Node) -> None:
        """Make the standby the primary. With no standby left to confirm commits, it must not
        wait for one (a three-node cluster would name the remaining standby instead)."""
        with (node.datadir / "postgresql.auto.conf").open("a") as conf:
            conf.write("synchronous_standby_names = ''\n")
        _as_server_user(PG_BIN / "pg_ctl", "-D", node.datadir, "reload")
        _as_server_user(PG_BIN / "pg_ctl", "-D", node.datadir, "-w", "-t", "60", "promote")

    def log(self, node: Node) -> str:
        path = self.root / f"{node.name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- cleanup -------------------------------------------------------------------------------

    def close(self) -> None:
        for node in self.nodes:
            if not node.running:
                continue
            stopped = _as_server_user(
                PG_BIN / "pg_ctl", "-D", node.datadir, "-m", "immediate", "-w", "stop", check=False
            )
            if stopped.returncode != 0 and (node.datadir / "postmaster.pid").exists():
                self.kill(node)
            node.running = False
        # Backends of a killed server exit on their own once they see the postmaster is gone.
        shutil.rmtree(self.root, ignore_errors=True)

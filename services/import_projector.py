"""An import's projector in a process of its own: ``python -m services.import_projector``.

The production topology (``ledger project`` is its own process), here so the projector works on
another core than the import instead of sharing one interpreter lock with it. The child is a
plain ``python -m`` of this module, not a multiprocessing child: spawn would re-import the
parent's main module (the whole CLI, gRPC included) first; this module imports the store and the
projector only.

The parent talks to it over its stdin and stdout, a line each: first the settings as JSON, then
``WAIT <position> <timeout seconds>``, answered ``AT 1`` (the read models include the position)
or ``AT 0`` (timed out). A child that fails answers ``FAILED <traceback as JSON>`` and exits; the
end of its stdin (the parent closed it or died) stops it. A parent that waits learns of a dead
child within ``LIVENESS_POLL`` seconds (``ProjectorFailed``), never waits on it forever.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
import traceback
from contextlib import suppress
from pathlib import Path
from typing import IO

from services.composition import build_store, new_projector
from services.observability.logs import configure_logging
from services.projector.database import ReadModelDatabase
from services.settings import Settings

# How often a side waiting on the other checks that the other is still there (seconds).
LIVENESS_POLL = 0.5
STOP_SECONDS = 30.0


class ProjectorFailed(RuntimeError):
    """The import's projector process failed or exited: the read models may be behind."""


class ProjectorProcess:
    """The parent's handle on the child: start it, wait for positions, stop it."""

    def __init__(self, settings: Settings, log_level: str = "WARNING") -> None:
        root = str(Path(__file__).resolve().parent.parent)  # where `services` is importable
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self._process = subprocess.Popen(  # noqa: S603 (this interpreter, this module)
            [sys.executable, "-m", "services.import_projector", log_level],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        self._send(settings.model_dump_json())

    @property
    def pid(self) -> int:
        return self._process.pid

    def _send(self, line: str) -> None:
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(line + "\n")
            self._process.stdin.flush()
        except OSError as error:  # the child is gone
            raise self._failed("") from error

    def wait_for_position(self, position: int, timeout: float) -> bool:
        """Block until the read models include ``position`` (True) or ``timeout`` passes."""
        self._send(f"WAIT {position} {timeout}")
        stdout = self._process.stdout
        assert stdout is not None
        while not select.select([stdout], [], [], LIVENESS_POLL)[0]:
            if self._process.poll() is not None and not select.select([stdout], [], [], 0)[0]:
                raise self._failed("")
        answer = stdout.readline()
        if answer.startswith("AT "):
            return answer.split()[1] == "1"
        detail = json.loads(answer[len("FAILED ") :]) if answer.startswith("FAILED ") else ""
        raise self._failed(detail)

    def _failed(self, detail: str) -> ProjectorFailed:
        with suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=5)
        if not detail and self._process.returncode is not None and self._process.stdout:
            # It may have said why before it went (a failed start, before our first request).
            for line in self._process.stdout.read().splitlines():
                if line.startswith("FAILED "):
                    detail = json.loads(line[len("FAILED ") :])
        return ProjectorFailed(
            f"the import's projector process exited (status {self._process.returncode})"
            + (f":\n{detail}" if detail else "")
        )

    def stop(self) -> None:
        if self._process.stdin is not None:
            with suppress(OSError):
                self._process.stdin.close()  # end of input: the child stops
        try:
            self._process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        if self._process.stdout is not None:
            self._process.stdout.close()


def serve(requests: IO[str], answers: IO[str]) -> None:
    """The child: follow the ledger, answering each WAIT, until ``requests`` ends."""
    stop = threading.Event()
    follower: threading.Thread | None = None
    store = readmodels = None
    parent = os.getppid()
    try:
        settings = Settings.model_validate_json(requests.readline())
        store = build_store(settings, pool_size=2)  # as `ledger project`: one reading thread
        readmodels = ReadModelDatabase(settings.resolved_readmodel_url())
        projector = new_projector(settings, store, readmodels)
        follower = threading.Thread(target=projector.run, args=(stop,), name="projector")
        follower.start()
        for request in requests:
            _, position, timeout = request.split()
            deadline = time.monotonic() + float(timeout)
            reached = False
            while not reached and time.monotonic() < deadline:
                if os.getppid() != parent:
                    return  # the importer died: nobody to answer
                reached = projector.wait_for_position(int(position), LIVENESS_POLL)
            answers.write(f"AT {int(reached)}\n")
            answers.flush()
    except BaseException:
        with suppress(OSError):
            answers.write(f"FAILED {json.dumps(traceback.format_exc())}\n")
            answers.flush()
        raise
    finally:
        stop.set()
        if store is not None:
            store.wake_waiters()
        if follower is not None:
            follower.join(timeout=STOP_SECONDS)
        if readmodels is not None:
            readmodels.close()
        if store is not None:
            store.close()


def main() -> int:
    configure_logging(sys.argv[1] if len(sys.argv) > 1 else "WARNING")
    try:
        serve(sys.stdin, sys.stdout)
    except Exception:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

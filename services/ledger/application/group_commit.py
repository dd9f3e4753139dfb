"""Group commit: concurrent commands share one transaction — one lock, one fsync — per batch.

Callers block in ``submit`` while a single writer thread takes everything queued so far (up to
``max_batch``) and runs it through the handler's batch path, which answers each command on its
own: a refused command does not fail its neighbours, commands on one case apply in order, and a
batch that loses a race to another process is retried command by command.

The wait is adaptive. While one batch is being written the next one queues up by itself, so
batching costs a lone caller nothing. Only when the previous batch held more than one command
(callers are concurrent) does the writer linger ``linger_seconds`` for stragglers.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

from services.ledger.application.commands import Command
from services.ledger.application.errors import DeadlineExceeded
from services.ledger.application.handler import CaseCommandHandler, Outcome
from services.ledger.application.results import CommandResult


@dataclass(slots=True)
class _Pending:
    command: Command
    deadline: float | None
    done: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | BaseException | None = None


class GroupCommitWriter:
    def __init__(
        self, handler: CaseCommandHandler, max_batch: int = 256, linger_seconds: float = 0.0002
    ) -> None:
        self._handler = handler
        self._max_batch = max_batch
        self._linger = linger_seconds
        self._queue: deque[_Pending] = deque()
        self._ready = threading.Condition()
        self._stopping = False
        self._last_batch_size = 0
        self.batches = 0
        self.commands = 0
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    def submit(self, command: Command, deadline: float | None = None) -> CommandResult:
        """Run ``command`` in the next batch; return its result or raise its error."""
        pending = _Pending(command, deadline)
        with self._ready:
            if self._stopping:
                raise RuntimeError("the group-commit writer is stopped")
            self._queue.append(pending)
            self._ready.notify()
        pending.done.wait()
        outcome = pending.outcome
        if isinstance(outcome, CommandResult):
            return outcome
        assert isinstance(outcome, BaseException)
        raise outcome

    def stop(self) -> None:
        """Write what is queued, then end the writer thread."""
        with self._ready:
            self._stopping = True
            self._ready.notify()
        self._thread.join()

    def _take(self, batch: list[_Pending]) -> None:
        while self._queue and len(batch) < self._max_batch:
            batch.append(self._queue.popleft())

    def _next_batch(self) -> list[_Pending] | None:
        batch: list[_Pending] = []
        with self._ready:
            while not self._queue and not self._stopping:
                self._ready.wait()
            if not self._queue:
                return None
            self._take(batch)
        if len(batch) < self._max_batch and self._last_batch_size > 1 and self._linger > 0:
            time.sleep(self._linger)
            with self._ready:
                self._take(batch)
        return batch

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            self._write(batch)

    def _execute(self, commands: list[Command]) -> list[Outcome | BaseException]:
        try:
            return list(self._handler.execute_batch(commands))
        except Exception as failure:
            if len(commands) == 1:
                return [failure]
        # Something failed the batch as a whole (the database went away, or a bug): run each
        # command alone, so one caller's trouble is not every caller's.
        return [outcome for command in commands for outcome in self._execute([command])]

    def _write(self, batch: list[_Pending]) -> None:
        now = time.monotonic()
        live = []
        for pending in batch:
            if pending.deadline is not None and now >= pending.deadline:
                pending.outcome = DeadlineExceeded("the deadline passed before the write began")
                pending.done.set()
            else:
                live.append(pending)
        self._last_batch_size = len(batch)
        if not live:
            return
        outcomes = self._execute([p.command for p in live])
        self.batches += 1
        self.commands += len(live)
        for pending, outcome in zip(live, outcomes, strict=True):
            pending.outcome = outcome
            pending.done.set()

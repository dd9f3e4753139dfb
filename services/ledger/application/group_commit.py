"""Group commit: concurrent commands share one transaction — one lock, one fsync — per batch.

Callers block in ``submit`` while a single writer thread takes everything queued so far (up to
``max_batch``) and runs it through the handler's batch path, which answers each command on its
own: a refused command does not fail its neighbours, commands on one case apply in order, and a
batch that loses a race to another process is retried command by command.

The wait is adaptive. While one batch is being written the next one queues up by itself, so
batching costs a lone caller nothing. Only when the previous batch held more than one command
(callers are concurrent) does the writer linger ``linger_seconds`` for stragglers.

Several writer threads (``writers``) overlap one batch's reading and deciding with another's
commit, which holds the events table lock through its fsync. That pays only where CPU is spare:
where it is scarce a second writer halves the batches and adds thread switches, so the server's
default is one (and several processes already overlap each other's batches). A writer never
takes a command whose case or command_id is in another writer's unfinished batch: such commands
wait, in order, for the batch after, so commands on one case still apply one after another and
a batch does not decide on a case another batch is changing.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from services.ledger.application.commands import Command
from services.ledger.application.errors import DeadlineExceeded
from services.ledger.application.handler import CaseCommandHandler, Outcome
from services.ledger.application.results import CommandResult


def _held_lock() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass(slots=True)
class _Pending:
    """A caller's command, waiting in ``done`` (held until the outcome is set: a bare lock is
    the cheapest one-shot wake-up there is, where an Event builds a Condition per call)."""

    command: Command
    deadline: float | None
    done: threading.Lock = field(default_factory=_held_lock)
    outcome: Outcome | BaseException | None = None

    def finish(self, outcome: Outcome | BaseException) -> None:
        self.outcome = outcome
        self.done.release()


def _keys_of(command: Command) -> tuple[str, str]:
    return f"case:{command.case_id}", f"command:{command.command_id}"


def _keys(batch: list[_Pending]) -> Counter[str]:
    """The case ids and command ids of ``batch``, with their counts."""
    return Counter(key for pending in batch for key in _keys_of(pending.command))


class GroupCommitWriter:
    def __init__(
        self,
        handler: CaseCommandHandler,
        max_batch: int = 256,
        linger_seconds: float = 0.0002,
        writers: int = 1,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._handler = handler
        self._on_batch = on_batch  # told each batch's size (metrics)
        self._max_batch = max_batch
        self._linger = linger_seconds
        self._queue: deque[_Pending] = deque()
        self._ready = threading.Condition()
        self._stopping = False
        self._in_flight: Counter[str] = Counter()  # case and command ids of unfinished batches
        self.batches = 0
        self.commands = 0
        self._threads = [
            threading.Thread(target=self._run, name=f"group-commit-{n}", daemon=True)
            for n in range(writers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, command: Command, deadline: float | None = None) -> CommandResult:
        """Run ``command`` in the next batch; return its result or raise its error."""
        pending = _Pending(command, deadline)
        with self._ready:
            if self._stopping:
                raise RuntimeError("the group-commit writer is stopped")
            self._queue.append(pending)
            self._ready.notify()
        pending.done.acquire()  # until finish()
        outcome = pending.outcome
        if isinstance(outcome, CommandResult):
            return outcome
        assert isinstance(outcome, BaseException)
        raise outcome

    def stop(self) -> None:
        """Write what is queued, then end the writer thread."""
        with self._ready:
            self._stopping = True
            self._ready.notify_all()
        for thread in self._threads:
            thread.join()

    def _take(self, batch: list[_Pending]) -> None:
        """Move queued commands into ``batch``, passing over (and keeping in order) those whose
        case or command_id another writer's batch holds. Call with ``_ready`` held."""
        mine = _keys(batch)
        held = {key for key, count in self._in_flight.items() if count > mine[key]}
        if not held:
            while self._queue and len(batch) < self._max_batch:
                batch.append(self._queue.popleft())
        else:
            kept: deque[_Pending] = deque()  # a case passed over once stays passed over
            while self._queue and len(batch) < self._max_batch:
                pending = self._queue.popleft()
                keys = _keys_of(pending.command)
                if keys[0] in held or keys[1] in held:
                    held.update(keys)
                    kept.append(pending)
                else:
                    batch.append(pending)
            kept.extend(self._queue)
            self._queue = kept

    def _release(self, batch: list[_Pending]) -> None:
        with self._ready:
            self._in_flight -= _keys(batch)
            if self._queue:
                self._ready.notify()  # commands passed over may be free now

    def _next_batch(self, last_size: int) -> list[_Pending] | None:
        batch: list[_Pending] = []
        with self._ready:
            while True:
                if self._queue:
                    self._take(batch)
                    if batch:
                        break
                elif self._stopping:
                    return None
                self._ready.wait()
            self._in_flight += _keys(batch)
        if len(batch) < self._max_batch and last_size > 1 and self._linger > 0:
            time.sleep(self._linger)
            with self._ready:
                taken = len(batch)
                self._take(batch)
                self._in_flight += _keys(batch[taken:])
        return batch

    def _run(self) -> None:
        last_size = 0
        while (batch := self._next_batch(last_size)) is not None:
            try:
                self._write(batch)
            finally:
                self._release(batch)
            last_size = len(batch)

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
                pending.finish(DeadlineExceeded("the deadline passed before the write began"))
            else:
                live.append(pending)
        if not live:
            return
        outcomes = self._execute([p.command for p in live])
        with self._ready:
            self.batches += 1
            self.commands += len(live)
        if self._on_batch is not None:
            self._on_batch(len(live))
        for pending, outcome in zip(live, outcomes, strict=True):
            pending.finish(outcome)

"""Progress of a long job (an import, a verify, a replay): a bar with rate and ETA on a terminal,
a line every few seconds otherwise (a Kubernetes Job's log, CI)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR_WIDTH = 30


class Progress:
    def __init__(
        self,
        total: int,
        label: str,
        unit: str = "commands",
        stream: TextIO | None = None,
        every_seconds: float = 5.0,
    ) -> None:
        self.total = total
        self.label = label
        self.unit = unit
        self.done = 0
        self._stream = stream if stream is not None else sys.stderr
        self._tty = self._stream.isatty()
        self._every = 0.2 if self._tty else every_seconds
        self._started = time.monotonic()
        self._last_shown = self._started

    def advance(self, count: int) -> None:
        """``count`` more are done."""
        self.reach(self.done + count)

    def reach(self, done: int) -> None:
        """``done`` are done in all."""
        self.done = done
        now = time.monotonic()
        if now - self._last_shown >= self._every:
            self._last_shown = now
            self._show(now, final=False)

    # A Progress is the ``Callable[[int], None]`` that verify and replay report to.
    __call__ = reach

    def finish(self) -> None:
        self._show(time.monotonic(), final=True)

    def line(self, now: float) -> str:
        elapsed = max(now - self._started, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta = f"{left:.0f}s" if left != float("inf") else "?"
        share = self.done / self.total if self.total else 1.0
        return (
            f"{self.label} {self.done}/{self.total} ({share:.0%}) "
            f"{rate:,.0f} {self.unit}/s ETA {eta}"
        )

    def _show(self, now: float, *, final: bool) -> None:
        if self._tty:
            share = min(self.done / self.total, 1.0) if self.total else 1.0
            bar = "#" * int(share * BAR_WIDTH)
            end = "\n" if final else ""
            self._stream.write(f"\r[{bar:<{BAR_WIDTH}}] {self.line(now)}\x1b[K{end}")
        else:
            self._stream.write(self.line(now) + "\n")
        self._stream.flush()

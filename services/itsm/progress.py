"""Progress of a long import: a bar with rate and ETA on a terminal, periodic lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(
        self, total: int, label: str, stream: TextIO | None = None, every_seconds: float = 5.0
    ) -> None:
        self.total = total
        self.label = label
        self.done = 0
        self._stream = stream if stream is not None else sys.stderr
        self._tty = self._stream.isatty()
        self._every = 0.2 if self._tty else every_seconds
        self._started = time.monotonic()
        self._last_shown = self._started

    def advance(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._last_shown >= self._every:
            self._last_shown = now
            self._show(now, final=False)

    def finish(self) -> None:
        self._show(time.monotonic(), final=True)

    def line(self, now: float) -> str:
        elapsed = max(now - self._started, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta = f"{left:.0f}s" if left != float("inf") else "?"
        share = self.done / self.total if self.total else 1.0
        return (
            f"{self.label} {self.done}/{self.total} ({share:.0%}) {rate:,.0f} commands/s ETA {eta}"
        )

    def _show(self, now: float, *, final: bool) -> None:
        if self._tty:
            share = self.done / self.total if self.total else 1.0
            bar = "#" * int(share * 30)
            end = "\n" if final else ""
            self._stream.write(f"\r[{bar:<30}] {self.line(now)}\x1b[K{end}")
        else:
            self._stream.write(self.line(now) + "\n")
        self._stream.flush()

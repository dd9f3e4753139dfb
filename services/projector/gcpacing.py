"""Keeps the garbage collector's full passes off the projector's path.

The projector holds thousands of recently touched cases in memory (``casestate``), about a
hundred collector-tracked objects each. Python's cyclic collector walks every one of them in a
full (generation 2) pass, which it starts on its own whenever enough new objects have survived:
here every few seconds of live traffic, each pass 100-600 ms, during which no batch is applied.
That alone made the live lag's p99 hundreds of milliseconds.

So after each committed batch the young generations are collected (this batch's short-lived
cycles) and whatever survived is frozen (``gc.freeze``): moved where the collector's passes do
not look. Frozen objects are still freed by reference counting when the projector lets go of
them — the case states hold no reference cycles — so memory stays as flat as before. Cyclic
garbage that outlives a batch (in an embedded server: any other component's) would stay frozen,
so once every ``full_every`` seconds everything is unfrozen and collected once.

The collector is process-wide: the composition (``services/bootstrap.py``) decides to use this.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable


class FrozenLongLived:
    """Call ``after_batch`` after each committed batch."""

    def __init__(
        self, full_every: float = 600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._full_every = full_every
        self._clock = clock
        self._last_full = clock()
        self.full_collections = 0

    def after_batch(self) -> None:
        gc.collect(1)
        now = self._clock()
        if now - self._last_full >= self._full_every:
            gc.unfreeze()
            gc.collect()
            self._last_full = now
            self.full_collections += 1
        gc.freeze()

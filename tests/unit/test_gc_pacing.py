"""The projector's collector pacing: survivors frozen after each batch, a full pass now and then."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from services.projector.gcpacing import FrozenLongLived


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector can free it


@pytest.fixture(autouse=True)
def _thawed() -> Iterator[None]:
    gc.collect()
    yield
    gc.unfreeze()  # leave the process as other tests expect it


def test_survivors_of_a_batch_are_frozen_and_its_cycles_collected() -> None:
    now = [0.0]
    pacing = FrozenLongLived(full_every=60.0, clock=lambda: now[0])
    kept = [Node() for _ in range(100)]
    Node()  # garbage of this batch
    before = gc.get_freeze_count()
    pacing.after_batch()
    assert gc.get_freeze_count() >= before + len(kept)
    assert not [o for o in gc.get_objects() if isinstance(o, Node)]  # none left to scan
    assert pacing.full_collections == 0


def test_a_full_pass_now_and_then_frees_cycles_that_outlived_a_batch() -> None:
    now = [0.0]
    pacing = FrozenLongLived(full_every=60.0, clock=lambda: now[0])
    outlived = [Node()]
    pacing.after_batch()  # the node is frozen while still in use
    outlived.clear()  # now garbage, but frozen: no pass sees it
    gc.collect()
    assert gc.get_freeze_count() > 0
    now[0] = 59.0
    pacing.after_batch()
    assert pacing.full_collections == 0
    now[0] = 61.0
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        pacing.after_batch()
        freed = [o for o in gc.garbage if isinstance(o, Node)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert pacing.full_collections == 1
    assert len(freed) == 1

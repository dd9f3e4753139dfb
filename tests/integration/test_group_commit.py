"""Group commit on a real store: batching under concurrency, isolation when a batch fails whole."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from services.ledger.application import commands as c
from services.ledger.application.group_commit import GroupCommitWriter
from services.ledger.application.handler import CaseCommandHandler
from services.ledger.application.results import CommandResult
from services.ledger.application.validation import Limits
from services.ledger.domain.values import Owner
from services.ledger.infrastructure.store import EventsourcingStore


@dataclass(frozen=True, kw_only=True)
class Unheard(c.Command):
    """A command no decision knows: running it fails its whole batch, as a bug would."""


@pytest.fixture
def writer(database_url: str) -> Iterator[GroupCommitWriter]:
    store = EventsourcingStore(database_url, pool_size=4)
    group = GroupCommitWriter(CaseCommandHandler(store, Limits()), linger_seconds=0.01)
    yield group
    group.stop()
    store.close()


def assign(n: int) -> c.Command:
    return c.Assign(case_id=f"G-{n}", command_id=f"g-{n}", actor="t", owner=Owner("a", "g"))


def submit_all(writer: GroupCommitWriter, commands: list[c.Command]) -> list[object]:
    outcomes: list[object] = [None] * len(commands)
    start = threading.Barrier(len(commands))

    def run(i: int) -> None:
        start.wait()
        try:
            outcomes[i] = writer.submit(commands[i])
        except Exception as error:
            outcomes[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(commands))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return outcomes


def test_concurrent_commands_share_transactions(writer: GroupCommitWriter) -> None:
    outcomes = submit_all(writer, [assign(n) for n in range(24)])
    assert all(isinstance(o, CommandResult) and o.events_recorded == 1 for o in outcomes)
    assert writer.commands == 24
    assert writer.batches < 24


def test_a_command_that_fails_its_batch_fails_alone(writer: GroupCommitWriter) -> None:
    writer.submit(assign(99))  # the poison's case exists, so deciding it reaches the bug
    commands: list[c.Command] = [assign(n) for n in range(10)]
    commands.insert(5, Unheard(case_id="G-99", command_id="poison", actor="t"))
    outcomes = submit_all(writer, commands)
    assert isinstance(outcomes[5], TypeError)
    others = outcomes[:5] + outcomes[6:]
    assert all(isinstance(o, CommandResult) for o in others), others

"""Group commit on a real store: batching under concurrency, isolation when a batch fails whole."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from services.ledger.application import commands as c
from services.ledger.application.group_commit import GroupCommitWriter
from services.ledger.application.handler import CaseCommandHandler
from services.ledger.application.ports import AppendConflict
from services.ledger.application.results import CommandResult
from services.ledger.application.validation import Limits
from services.ledger.domain.errors import RuleViolated
from services.ledger.domain.values import Owner, TransferReason
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


class ConflictCountingStore(EventsourcingStore):
    """The real store, counting appends refused because another writer moved a case."""

    conflicts = 0

    def append(self, *args: Any, **kwargs: Any) -> dict[tuple[str, int], int]:
        try:
            return super().append(*args, **kwargs)
        except AppendConflict:
            self.conflicts += 1
            raise


def test_several_writers_never_decide_on_a_case_another_is_writing(database_url: str) -> None:
    store = ConflictCountingStore(database_url, pool_size=6)
    writer = GroupCommitWriter(CaseCommandHandler(store, Limits()), linger_seconds=0.001, writers=3)
    try:
        hot = ["H-0", "H-1"]
        for case_id in hot:
            writer.submit(c.Assign(case_id=case_id, command_id=f"{case_id}/0", actor="t",
                                   owner=Owner("a", "g")))  # fmt: skip
        owners = [Owner("a", "g"), Owner("b", "g")]
        threads, rounds = 12, 15

        def transfer(t: int, r: int) -> c.Command:
            return c.Transfer(case_id=hot[(t + r) % 2], command_id=f"t{t}-{r}", actor="t",
                              to_owner=owners[r % 2], reason=TransferReason.ESCALATION)  # fmt: skip

        sent = {t: [transfer(t, r) for r in range(rounds)] for t in range(threads)}
        results: dict[int, list[object]] = {t: [] for t in range(threads)}
        start = threading.Barrier(threads)

        def run(t: int) -> None:
            start.wait()
            for command in sent[t]:
                try:
                    results[t].append(writer.submit(command))
                except Exception as error:
                    results[t].append(error)

        workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=60)

        outcomes = [o for t in range(threads) for o in results[t]]
        assert len(outcomes) == threads * rounds
        refused = [o for o in outcomes if not isinstance(o, CommandResult)]
        # Transfers to the current owner are refused by the domain; nothing else may fail.
        assert all(isinstance(o, RuleViolated) for o in refused), refused[:3]
        assert store.conflicts == 0, "a writer decided on a case another writer was changing"
        assert writer.batches < writer.commands, "no two commands ever shared a transaction"
        for case_id in hot:
            versions = [e.event.originator_version for e in store.read_case(case_id, 0, 1000)]
            assert versions == list(range(1, len(versions) + 1))
            # Each thread's accepted commands on this case were applied in the order it sent them.
            for t in range(threads):
                mine = [r.version for r in results[t]
                        if isinstance(r, CommandResult) and r.case_id == case_id]  # fmt: skip
                assert mine == sorted(mine)
    finally:
        writer.stop()
        store.close()

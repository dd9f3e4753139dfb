"""The pipelined import (``execute_import_stream``) against batch-by-batch ``execute_import``.

The stream decides each batch while the one before it is written, on the states that batch
leaves. These tests require the same answers and the same stored bytes as one batch after the
other, with repeats and reused command_ids across batch boundaries; a batch ahead that loses a
race to another writer must not leave the next batch decided on the state it assumed; and a
failed write must stop the stream with nothing after it written.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from services.audit.checkpoints import CheckpointTable
from services.audit.service import Auditor
from services.ledger.application import commands as c
from services.ledger.application.errors import StoreUnavailable
from services.ledger.application.handler import CaseCommandHandler, Outcome
from services.ledger.application.results import CommandResult
from services.ledger.application.validation import Limits
from services.ledger.domain.case import Case
from services.ledger.domain.values import Owner, PauseReason, TransferReason
from services.ledger.infrastructure.store import EventsourcingStore
from tests.integration.test_import_path import (
    ALICE,
    CARL,
    SteppingClock,
    _answers,
    _at,
    _rows,
    awkward_commands,
)


@pytest.fixture
def stores(database_url: str, tmp_path: object) -> Iterator[tuple[EventsourcingStore, ...]]:
    """Two empty stores of the same kind: one per way of importing."""
    if database_url.startswith("sqlite"):
        other = f"sqlite:///{tmp_path}/other.sqlite"
    else:
        other = re.sub(r"schema=t_(\w+)", r"schema=t_\1_other", database_url)
    opened = (EventsourcingStore(database_url, pool_size=4), EventsourcingStore(other, pool_size=4))
    yield opened
    for store in opened:
        store.close()


def _across_batches() -> list[list[c.Command]]:
    """Batches whose commands depend on the batch just before: cases continued, commands that
    batch accepted repeated exactly (a no-op among them) or their command_ids reused for
    something else, refusals, a batch with nothing valid, and repeats of older batches."""
    first = awkward_commands()
    noop = c.Assign(case_id="CASE-b", command_id="b-noop", owner=CARL, **_at(19))  # its owner
    second = [*first[12:20], noop]  # CASE-ä resolved and reopened, CASE-b one activity on
    b4 = c.Transfer(case_id="CASE-b", command_id="b4", to_owner=ALICE,
                    reason=TransferReason.OTHER, **_at(21))  # fmt: skip
    third = [
        first[13], noop, first[12],  # accepted by the batch ahead
        c.Resume(case_id="CASE-ä", command_id="a7", **_at(20)),  # a7 was a correction
        b4,
        c.Reopen(case_id="CASE-ä", command_id="a-refused-4", reason="x", **_at(22)),  # open
        c.Transfer(case_id="CASE-b", command_id="b5", to_owner=Owner("kim", "l2"),
                   reason=TransferReason.ESCALATION, expected_version=3, **_at(23)),
        c.Pause(case_id="CASE-b", command_id="b-stale", reason=PauseReason.SCHEDULED,
                expected_version=3, **_at(24)),
    ]  # fmt: skip
    nothing_valid = [c.Assign(case_id="", command_id="bad2", owner=ALICE, **_at(25))]
    last = [b4, first[0], c.Resolve(case_id="CASE-b", command_id="b6", **_at(26))]
    return [first[:12], second, third, nothing_valid, last]


def test_the_stream_answers_and_stores_what_batch_after_batch_does(
    stores: tuple[EventsourcingStore, EventsourcingStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    one_by_one, streamed = stores
    batches = _across_batches()
    # Both decide in the same order, so both read the same recording times from this clock.
    monkeypatch.setattr(Case.Event, "create_timestamp", staticmethod(SteppingClock()))
    handler = CaseCommandHandler(one_by_one, Limits())
    expected = [handler.execute_import(batch) for batch in batches]
    monkeypatch.setattr(Case.Event, "create_timestamp", staticmethod(SteppingClock()))
    answers = list(CaseCommandHandler(streamed, Limits()).execute_import_stream(iter(batches)))

    assert [_answers(a) for a in answers] == [_answers(e) for e in expected]
    kinds = {type(o).__name__ for batch in answers for o in batch}
    assert {"CommandIdReused", "VersionConflict", "RuleViolated", "InvalidCommand"} <= kinds
    replays = [o for o in answers[2] if getattr(o, "replayed", False)]
    assert len(replays) == 3 and replays[1].events_recorded == 0
    assert _rows(streamed) == _rows(one_by_one) and len(_rows(streamed)) == 16
    assert Auditor(streamed, CheckpointTable(streamed)).verify_range().ok


class _MovedByAnotherWriter:
    """A store whose ``n``-th sealed append first lets another writer move a case."""

    def __init__(self, store: EventsourcingStore, other: CaseCommandHandler, n: int) -> None:
        self._store = store
        self._other = other
        self._appends = 0
        self._n = n

    def append_sealed(self, *args: Any, **kwargs: Any) -> Any:
        self._appends += 1
        if self._appends == self._n:
            moved = self._other.execute_batch(
                [
                    c.Transfer(
                        case_id="CASE-b",
                        command_id="elsewhere",
                        to_owner=Owner("zed", "x"),
                        reason=TransferReason.OTHER,
                        **_at(19),
                    )
                ]
            )
            assert type(moved[0]).__name__ == "CommandResult"
        return self._store.append_sealed(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def _raced_import(store: EventsourcingStore, url: str, stream: bool) -> list[list[Outcome]]:
    """The batches imported while another process moves CASE-b just before the 2nd write."""
    other = EventsourcingStore(url, pool_size=2)  # another process's store, same database
    try:
        racing = _MovedByAnotherWriter(store, CaseCommandHandler(other, Limits()), n=2)
        handler = CaseCommandHandler(racing, Limits())  # type: ignore[arg-type]
        if stream:
            return list(handler.execute_import_stream(iter(_across_batches())))
        return [handler.execute_import(batch) for batch in _across_batches()]
    finally:
        other.close()


def test_a_batch_ahead_that_loses_a_race_is_not_taken_for_granted(
    stores: tuple[EventsourcingStore, EventsourcingStore], database_url: str, tmp_path: object
) -> None:
    one_by_one, streamed = stores
    other_url = (
        f"sqlite:///{tmp_path}/other.sqlite"
        if database_url.startswith("sqlite")
        else re.sub(r"schema=t_(\w+)", r"schema=t_\1_other", database_url)
    )
    expected = _raced_import(one_by_one, database_url, stream=False)
    # The second batch was decided before "elsewhere" moved CASE-b, and retried alone; the
    # third, decided meanwhile on the second's states, must be decided again on what is stored.
    answers = _raced_import(streamed, other_url, stream=True)

    assert [_answers(a) for a in answers] == [_answers(e) for e in expected]
    # Taken for granted, the batch ahead would have made b-noop a replay and b5 version 4.
    b_noop, b4, b5 = answers[2][1], answers[2][4], answers[2][6]
    assert type(b_noop).__name__ == "RuleViolated" and type(b5).__name__ == "VersionConflict"
    assert isinstance(b4, CommandResult) and b4.version == 4
    assert Auditor(streamed, CheckpointTable(streamed)).verify_range().ok
    stored = streamed.raw_events(0, 1000)
    assert [n.id for n in stored] == list(range(1, len(stored) + 1))
    assert [(n.originator_id, n.originator_version) for n in stored] == [
        (n.originator_id, n.originator_version) for n in one_by_one.raw_events(0, 1000)
    ]


def test_a_failed_write_stops_the_stream_with_nothing_after_it_written(
    stores: tuple[EventsourcingStore, EventsourcingStore],
) -> None:
    store, _ = stores

    class FailingSecondAppend:
        appends = 0

        def append_sealed(self, *args: Any, **kwargs: Any) -> Any:
            self.appends += 1
            if self.appends == 2:
                raise StoreUnavailable("the event store is unavailable: test")
            return store.append_sealed(*args, **kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

    failing = FailingSecondAppend()
    handler = CaseCommandHandler(failing, Limits())  # type: ignore[arg-type]
    outcomes = handler.execute_import_stream(iter(_across_batches()))
    seen = [next(outcomes)]  # the first batch's answers
    with pytest.raises(StoreUnavailable):
        next(outcomes)  # the second's write fails; the third was decided meanwhile
    assert failing.appends == 2
    written = [o for o in seen[0] if isinstance(o, CommandResult) and not o.replayed]
    assert [row[0] for row in _rows(store)] == list(range(1, 8))
    assert sum(o.events_recorded for o in written) == 7


def test_written_batches_are_answered_before_a_later_batch_fails_to_arrive(
    stores: tuple[EventsourcingStore, EventsourcingStore],
) -> None:
    store, _ = stores

    def batches() -> Iterator[list[c.Command]]:
        yield from _across_batches()[:2]
        raise ConnectionError("the stream broke")

    outcomes = CaseCommandHandler(store, Limits()).execute_import_stream(batches())
    seen = [next(outcomes), next(outcomes)]  # the second was being written as the stream broke
    with pytest.raises(ConnectionError):
        next(outcomes)
    written = [o for o in seen[0] + seen[1] if isinstance(o, CommandResult) and not o.replayed]
    assert len(_rows(store)) == sum(o.events_recorded for o in written) == 13

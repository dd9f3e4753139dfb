"""The import path (``execute_import``: compact case states, sealed events) against the normal one.

Both decide with the same rules; the import path skips the aggregate's objects. These tests run
the same commands — every kind, refusals in the middle, duplicates, stale expected versions,
no-ops — through both, each into a store of its own, on SQLite and PostgreSQL, and require the
same answers, the same stored rows byte for byte (but the recording time), a verified hash chain,
and a correct handover between the two paths on the same cases.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bench.workload import interleaved_batches
from ownership.v1 import ledger_pb2 as pb
from services.audit.checkpoints import CheckpointTable
from services.audit.service import Auditor
from services.ledger.api.rendering import batch_command
from services.ledger.api.servicer import LedgerServicer
from services.ledger.application import commands as c
from services.ledger.application.handler import CaseCommandHandler, Outcome
from services.ledger.application.results import CommandResult
from services.ledger.application.validation import Limits
from services.ledger.domain.case import Case
from services.ledger.domain.errors import DomainError
from services.ledger.domain.values import Owner, PauseReason, SwarmRole, Tier, TransferReason
from services.ledger.infrastructure.store import EventsourcingStore

WHEN = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
ALICE, BOB, CARL = Owner("alice", "desk"), Owner("bob", "l2"), Owner("", "l3-queue")


def _at(minutes: int) -> dict[str, object]:
    return {"actor": "importer", "occurred_at": WHEN + timedelta(minutes=minutes)}


def awkward_commands() -> list[c.Command]:
    """Every command kind, with refusals, duplicates and no-ops among the accepted ones."""
    a, b = "CASE-ä", "CASE-b"
    return [
        c.Assign(case_id=a, command_id="a1", owner=ALICE, tier=Tier.L1, note="café", **_at(0)),
        c.Resume(case_id=a, command_id="a-refused-1", **_at(1)),  # not paused: refused
        c.JoinSwarm(case_id=a, command_id="a2", agent_id="sam", group_id="net",
                    role=SwarmRole.CONSULTANT, **_at(2)),
        c.Transfer(case_id=b, command_id="b-refused-1", to_owner=BOB,  # no such case yet
                   reason=TransferReason.OTHER, **_at(2)),
        c.Assign(case_id=b, command_id="b1", owner=CARL, **_at(3)),
        c.Transfer(case_id=a, command_id="a3", to_owner=Owner("sam", "net"),
                   reason=TransferReason.ESCALATION, tier=Tier.L2, note='"quoted"\n',
                   eta=WHEN, warm=True, **_at(4)),
        c.Assign(case_id=a, command_id="a2", owner=ALICE, **_at(5)),  # command_id reused
        c.JoinSwarm(case_id=a, command_id="a2", agent_id="sam", group_id="net",
                    role=SwarmRole.CONSULTANT, **_at(2)),  # an exact repeat
        c.Transfer(case_id=a, command_id="a-noop", to_owner=Owner("sam", "net"),
                   reason=TransferReason.OTHER, **_at(5)),  # already there: a no-op
        c.Pause(case_id=a, command_id="a4", reason=PauseReason.AWAITING_CUSTOMER,
                until=WHEN + timedelta(days=2), expected_version=4, **_at(6)),
        c.Pause(case_id=a, command_id="a-stale", reason=PauseReason.SCHEDULED,
                expected_version=4, **_at(7)),  # stale expected_version
        c.JoinSwarm(case_id=a, command_id="a5", agent_id="kim", role=SwarmRole.OBSERVER,
                    **_at(8)),
        c.Resume(case_id=a, command_id="a6", **_at(9)),
        c.RecordActivity(case_id=b, command_id="b2", activity="Wait - User", **_at(9)),
        c.CorrectOccurrence(case_id=a, command_id="a7", corrects_version=2,
                            corrected_occurred_at=WHEN - timedelta(hours=1), reason="typo",
                            **_at(10)),
        c.CorrectOccurrence(case_id=a, command_id="a-refused-2", corrects_version=8,
                            corrected_occurred_at=WHEN, reason="x", **_at(11)),
        c.Resolve(case_id=a, command_id="a8", resolution_code="fixed", **_at(12)),
        c.Transfer(case_id=a, command_id="a-refused-3", to_owner=BOB,
                   reason=TransferReason.OTHER, **_at(13)),  # resolved
        c.Reopen(case_id=a, command_id="a9", reason="again", **_at(14)),
        c.Assign(case_id="", command_id="bad", owner=ALICE, **_at(15)),  # malformed
        c.Resolve(case_id=b, command_id="b3", **_at(16)),
    ]  # fmt: skip


@pytest.fixture
def stores(database_url: str, tmp_path: object) -> Iterator[tuple[EventsourcingStore, ...]]:
    """Two empty stores of the same kind: one per path."""
    if database_url.startswith("sqlite"):
        other = f"sqlite:///{tmp_path}/other.sqlite"
    else:
        other = re.sub(r"schema=t_(\w+)", r"schema=t_\1_other", database_url)
    opened = (EventsourcingStore(database_url, pool_size=4), EventsourcingStore(other, pool_size=4))
    yield opened
    for store in opened:
        store.close()


def _answers(outcomes: list[Outcome]) -> list[tuple[str, str]]:
    return [
        (type(o).__name__, repr(o) if isinstance(o, CommandResult) else str(o)) for o in outcomes
    ]


def _rows(store: EventsourcingStore) -> list[tuple[int, str, int, str, bytes]]:
    return [
        (n.id, str(n.originator_id), n.originator_version, n.topic, n.state)
        for n in store.raw_events(0, 10_000)
    ]


class SteppingClock:
    """Recording times that step by a microsecond per event, the same on both paths."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1)
        return self.now


def test_the_import_path_answers_and_stores_exactly_what_the_normal_path_does(
    stores: tuple[EventsourcingStore, EventsourcingStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    normal_store, import_store = stores
    normal = CaseCommandHandler(normal_store, Limits())
    imported = CaseCommandHandler(import_store, Limits())
    commands = awkward_commands()
    # The recording time is hashed and stored: both paths read it from the same stepping clock
    # (the one place events take it from), restarted for each.
    monkeypatch.setattr(Case.Event, "create_timestamp", staticmethod(SteppingClock()))
    # In two batches, so the second decides on cases the first wrote (the state cache).
    normal_answers = normal.execute_batch(commands[:9]) + normal.execute_batch(commands[9:])
    monkeypatch.setattr(Case.Event, "create_timestamp", staticmethod(SteppingClock()))
    import_answers = imported.execute_import(commands[:9]) + imported.execute_import(commands[9:])

    assert _answers(import_answers) == _answers(normal_answers)
    kinds = [type(o).__name__ for o in import_answers]
    assert kinds.count("CommandResult") == 14 and "RuleViolated" in kinds
    assert {"CaseNotFound", "CommandIdReused", "VersionConflict", "InvalidCommand"} <= set(kinds)
    import_rows = _rows(import_store)
    assert len(import_rows) == 14 and import_rows == _rows(normal_store)
    assert Auditor(import_store, CheckpointTable(import_store)).verify_range().ok
    # A replay adds nothing and answers as the first time did, on either path.
    accepted = [
        x for x, o in zip(commands, import_answers, strict=True) if isinstance(o, CommandResult)
    ]
    again = imported.execute_import(accepted)
    assert [o.replayed for o in again if isinstance(o, CommandResult)] == [True] * 14
    assert len(_rows(import_store)) == 14


def test_imported_history_loads_verifies_and_continues_on_either_path(
    stores: tuple[EventsourcingStore, EventsourcingStore],
) -> None:
    store, _ = stores
    handler = CaseCommandHandler(store, Limits())
    batches = list(interleaved_batches(120, 250, prefix="IMP"))
    answers = []
    for number, batch in enumerate(batches):
        # Alternate the paths on the same interleaved cases: each must pick up the other's work.
        run = handler.execute_import if number % 2 == 0 else handler.execute_batch
        answers += run(batch)
    assert all(isinstance(o, CommandResult) and not o.replayed for o in answers)
    report = Auditor(store, CheckpointTable(store)).verify_range()
    assert report.ok, report.summary()
    assert report.events == sum(o.events_recorded for o in answers if isinstance(o, CommandResult))
    positions = [n.id for n in store.raw_events(0, 100_000)]
    assert positions == list(range(1, len(positions) + 1))
    # The aggregates rebuilt from the stored history are what the import decided on.
    for case_id in {command.case_id for batch in batches for command in batch}:
        case = store.load_case(case_id)
        states = store.load_states_for_commands([], [case_id])[1]
        state = states[case_id]
        assert case is not None and state is not None
        assert (state.version, state.chain_hash, state.owner, state.status, state.swarm) == (
            case.version, case.chain_hash, case.owner, case.status, case.swarm
        )  # fmt: skip


def test_a_case_moved_by_another_process_is_decided_on_its_new_state(
    stores: tuple[EventsourcingStore, EventsourcingStore], database_url: str
) -> None:
    store, _ = stores
    handler = CaseCommandHandler(store, Limits())
    elsewhere = EventsourcingStore(database_url, pool_size=2)  # another process's store
    try:
        other = CaseCommandHandler(elsewhere, Limits())
        [opened] = handler.execute_import(
            [c.Assign(case_id="X", command_id="x1", owner=ALICE, **_at(0))]
        )
        assert isinstance(opened, CommandResult)
        moved = other.execute_batch(
            [
                c.Transfer(
                    case_id="X",
                    command_id="x2",
                    to_owner=BOB,
                    reason=TransferReason.OTHER,
                    **_at(1),
                )
            ]
        )
        assert isinstance(moved[0], CommandResult) and moved[0].version == 2
        # This process cached X at version 1; the import must decide on version 2.
        [refused, accepted] = handler.execute_import(
            [
                c.Pause(case_id="X", command_id="x3", reason=PauseReason.SCHEDULED,
                        expected_version=1, **_at(2)),
                c.Transfer(case_id="X", command_id="x4", to_owner=CARL,
                           reason=TransferReason.OTHER, **_at(3)),
            ]
        )  # fmt: skip
        assert type(refused).__name__ == "VersionConflict"
        assert isinstance(accepted, CommandResult) and accepted.version == 3
        case = store.load_case("X")
        assert case is not None and case.owner == CARL and case.version == 3
        assert Auditor(store, CheckpointTable(store)).verify_case("X").ok
    finally:
        elsewhere.close()


def test_imports_are_answered_batch_by_batch_and_refusals_hold_no_frames(
    stores: tuple[EventsourcingStore, EventsourcingStore],
) -> None:
    store, _ = stores
    handler = CaseCommandHandler(store, Limits())
    answered: list[int] = []
    servicer = LedgerServicer(
        handler, None, None, import_batch=8,  # type: ignore[arg-type]
        after_import_batch=lambda: answered.append(len(_rows(store))),
    )  # fmt: skip
    commands = awkward_commands()
    messages = [
        pb.ImportEventsRequest(commands=[batch_command(x) for x in commands[start : start + 5]])
        for start in range(0, len(commands), 5)
    ]
    response = servicer.ImportEvents(iter(messages), None)  # type: ignore[arg-type]
    assert (response.accepted, response.replayed, response.refused) == (13, 1, 7)
    assert answered == [5, 10, 14]  # once per batch of 8 commands, after it was written
    # A refusal's traceback would hold the handler's frames, and through them the refusal
    # itself: garbage only the cyclic collector frees, which imports keep out of the way.
    refusals = [o for o in handler.execute_import(commands) if isinstance(o, DomainError)]
    assert refusals and all(r.__traceback__ is None for r in refusals)

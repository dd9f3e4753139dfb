"""The fast encoders write exactly what the general ones write.

Every event's chain hash (``state_link_hash``) and stored state (``LedgerJSONTranscoder``) are
made by writers tuned for the ledger's value types; these tests hold them side by side with the
general forms (``link_hash`` over ``event_fields``; the library's ``JSONTranscoder``) on every
kind of event and on awkward values: non-ASCII and control characters, time zones other than UTC,
times without microseconds, absent values, and types with no fast form.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, UUIDAsHex
from eventsourcing.utils import get_topic

from services.ledger.domain import isotime
from services.ledger.domain.case import Case, Provenance
from services.ledger.domain.chain import GENESIS, event_fields, link_hash, state_link_hash
from services.ledger.domain.isotime import iso_text, iso_text_microseconds
from services.ledger.domain.values import Owner, PauseReason, SwarmRole, Tier, TransferReason
from services.ledger.infrastructure.transcoding import (
    EnumAsValue,
    LedgerJSONTranscoder,
    register_domain_transcodings,
)

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


class Level(Enum):
    """An enum whose values are not text: the fast writers' general branch."""

    LOW = 1
    HIGH = (2, "x")


ELSEWHERE = timezone(timedelta(hours=-3, minutes=-30))


def _every_kind_of_event() -> list[Case.Event]:
    """One case through every command, with notes and times chosen to be awkward."""
    notes = iter(["", "café ☕", 'quote " and \\ back', "line\nbreak\ttab", "\u2028 \U0001f600"])

    def at(step: int) -> Provenance:
        moment = AT + timedelta(minutes=step, microseconds=step % 2 * 123_456)
        if step % 3 == 0:
            moment = moment.astimezone(ELSEWHERE)
        trace = f"00-{step:032x}-{step:016x}-01" if step % 2 else None
        return Provenance(
            occurred_at=moment, actor="désk", command_id=f"c-{step}", trace_parent=trace
        )

    def note() -> str:
        return next(notes, "plain")

    case = Case.open("INC-ü/1", Owner("alice", "desk"), Tier.L1, note(), at(0))
    case.join_swarm("sam", "net", SwarmRole.CONSULTANT, note(), at(1))
    case.transfer(Owner("sam", ""), TransferReason.ESCALATION, Tier.L2, note(), AT, True, at(2))
    case.join_swarm("kim", "", SwarmRole.OBSERVER, note(), at(3))
    case.leave_swarm("kim", note(), at(4))
    case.pause(PauseReason.AWAITING_CUSTOMER, AT.astimezone(ELSEWHERE), "", at(5))
    case.resume("", at(6))
    case.record_activity("Wait - User", "", at(7))
    case.correct_occurrence(2, AT - timedelta(days=1), "typo", "", at(8))
    case.join_swarm("lee", "db", SwarmRole.CONTRIBUTOR, "", at(9))
    case.resolve("fixed", "", at(10))
    case.reopen("again", "", at(11))
    events: list[Case.Event] = list(case.pending_events)  # type: ignore[arg-type]
    assert {type(e) for e in events} == {
        Case.Assigned, Case.SwarmJoined, Case.Transferred, Case.SwarmLeft, Case.Paused,
        Case.Resumed, Case.ActivityRecorded, Case.OccurrenceCorrected, Case.Resolved,
        Case.Reopened,
    }  # fmt: skip
    return events


def _transcoders() -> tuple[JSONTranscoder, LedgerJSONTranscoder]:
    general, fast = JSONTranscoder(), LedgerJSONTranscoder()
    for transcoder in (general, fast):
        for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
            transcoder.register(transcoding)
        register_domain_transcodings(transcoder)
        transcoder.register(EnumAsValue(Level, "level"))
    return general, fast


def test_the_fast_chain_hash_is_the_general_one_for_every_kind_of_event() -> None:
    for event in _every_kind_of_event():
        state = vars(event)
        topic, class_version = get_topic(type(event)), type(event).class_version
        for previous in (GENESIS, event.chain_hash):
            assert state_link_hash(
                event.originator_id, event.originator_version, topic, class_version, state, previous
            ) == link_hash(
                event.originator_id,
                event.originator_version,
                topic,
                class_version,
                event_fields(state),
                previous,
            )


@pytest.mark.parametrize(
    "value",
    [
        None, True, False, 0, -7, 2**70, "", "ünï\x00\x1f\u2028", AT, AT.astimezone(ELSEWHERE),
        AT.replace(microsecond=1), Owner("", "queue"), Tier.L4, Level.LOW, Level.HIGH, UUID(int=5),
        {"z": 1, "a": [AT, "x"], "m": {"k": Owner("a", "b")}}, [1, "two", None], (Tier.L1,),
    ],
)  # fmt: skip
def test_the_fast_chain_hash_agrees_on_awkward_values(value: Any) -> None:
    state = {"originator_id": "x", "zeta": value, "alpha": "a", "chain_hash": "ignored"}
    assert state_link_hash("x", 3, "t:T", 3, state, GENESIS) == link_hash(
        "x", 3, "t:T", 3, event_fields(state), GENESIS
    )


def test_the_fast_chain_hash_refuses_what_the_general_one_refuses() -> None:
    with pytest.raises(TypeError):
        state_link_hash("x", 1, "t:T", 3, {"share": 0.5}, GENESIS)
    with pytest.raises(ValueError, match="naive"):
        state_link_hash("x", 1, "t:T", 3, {"at": datetime(2026, 1, 1)}, GENESIS)


def test_the_fast_transcoder_writes_the_librarys_bytes_for_every_kind_of_event() -> None:
    general, fast = _transcoders()
    for event in _every_kind_of_event():
        state = dict(vars(event))
        del state["originator_id"], state["originator_version"]
        state["class_version"] = type(event).class_version
        written = fast.encode(state)
        assert written == general.encode(state)
        assert fast.decode(written) == general.decode(written)


@pytest.mark.parametrize(
    "value",
    [
        None, True, 0, -7, 2**70, 0.5, float("nan"), "ünï\x00\x1f\u2028\U0001f600", AT,
        AT.astimezone(ELSEWHERE), AT.replace(microsecond=1), Owner("a", ""), Tier.L2, Level.LOW,
        UUID(int=5), Decimal("1.50"), [AT, Owner("a", "b"), 1.5], (1, 2), {"k": {"j": AT}},
        {1: "int key"}, {None: "none key"}, {},
    ],
)  # fmt: skip
def test_the_fast_transcoder_agrees_on_awkward_values(value: Any) -> None:
    general, fast = _transcoders()
    state = {"b": value, "a": "first", "é": [value]}
    assert fast.encode(state) == general.encode(state)
    assert fast.encode(value) == general.encode(value)


def test_the_fast_transcoder_refuses_what_the_library_refuses() -> None:
    general, fast = _transcoders()
    for transcoder in (general, fast):
        with pytest.raises(TypeError):
            transcoder.encode({"x": object()})


class _LaterDatetime(datetime):
    """A datetime subclass that formats itself otherwise: never answered from the memo."""

    def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
        return "later:" + super().isoformat(sep, timespec)


@pytest.mark.parametrize(
    "moment",
    [
        AT,
        AT.replace(microsecond=5),
        AT.astimezone(ELSEWHERE),
        AT.replace(tzinfo=timezone(timedelta(0))),  # UTC's offset, another tzinfo object
        AT.replace(tzinfo=None),
        _LaterDatetime(2026, 3, 1, 9, 30, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
    ],
)
def test_remembered_iso_texts_are_isoformat(moment: datetime) -> None:
    for _ in range(2):  # the first call formats, the second may remember
        assert iso_text(moment) == moment.isoformat()
        assert iso_text_microseconds(moment) == moment.isoformat(timespec="microseconds")
    # The same instant in another zone is equal, and hashes alike, but is written otherwise.
    assert iso_text(AT.astimezone(ELSEWHERE)) == AT.astimezone(ELSEWHERE).isoformat()


def test_the_iso_memo_stays_bounded() -> None:
    for minute in range(isotime.MAX_REMEMBERED + 10):
        moment = AT + timedelta(minutes=minute)
        assert iso_text(moment) == moment.isoformat()
    assert len(isotime._TEXT) <= isotime.MAX_REMEMBERED

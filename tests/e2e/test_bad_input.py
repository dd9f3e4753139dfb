"""Malformed requests are refused with INVALID_ARGUMENT naming every bad field, and store nothing.

Also: a property-based test that throws random, adversarial requests of every kind at the real
server and checks that it never fails internally and stores only what it said it accepted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ownership.v1 import ledger_pb2 as pb
from ownership.v1 import ledger_pb2_grpc
from services.bootstrap import Ledger
from services.ledger.api.server import channel
from tests.e2e.conftest import start_ledger
from tests.e2e.wire import ALICE, BOB, RPC_OF, all_events, refusal, request, ts

Stub = ledger_pb2_grpc.LedgerServiceStub

# The range a google.protobuf.Timestamp can hold: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
MIN_SECONDS, MAX_SECONDS = -62135596800, 253402300799


# --- helpers ------------------------------------------------------------------------------------


def violations(error: grpc.RpcError) -> dict[str, str]:
    """The BadRequest field violations of an INVALID_ARGUMENT error, as {field: description}."""
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    status = rpc_status.from_call(error)
    found: dict[str, str] = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found |= {v.field: v.description for v in bad.field_violations}
    assert found, "INVALID_ARGUMENT must carry a google.rpc.BadRequest with field violations"
    return found


def invalid_fields(call: Callable[[Any], Any], req: Any) -> dict[str, str]:
    return violations(refusal(call, req))


def open_case(stub: Stub, case_id: str, owner: pb.Owner = ALICE) -> pb.AppendResult:
    return stub.Assign(
        request(pb.AssignRequest, case_id, f"{case_id}/open", owner=owner, tier=pb.TIER_L1)
    ).result


def valid_requests(case_id: str, tag: str) -> list[tuple[str, Any]]:
    """One well-formed request of every kind on ``case_id``.

    On the ``case`` fixture most of them would be accepted; Leave, Resume and Reopen would break a
    rule. Either way, a malformed copy must be refused as INVALID_ARGUMENT before that.
    """
    return [
        ("Assign", request(pb.AssignRequest, case_id, f"{tag}/assign", owner=ALICE)),
        (
            "Transfer",
            request(
                pb.TransferRequest,
                case_id,
                f"{tag}/transfer",
                to_owner=BOB,
                reason=pb.TRANSFER_REASON_ESCALATION,
            ),
        ),
        (
            "JoinSwarm",
            request(
                pb.JoinSwarmRequest,
                case_id,
                f"{tag}/join",
                agent_id="carol",
                role=pb.SWARM_ROLE_CONSULTANT,
            ),
        ),
        ("LeaveSwarm", request(pb.LeaveSwarmRequest, case_id, f"{tag}/leave", agent_id="carol")),
        (
            "Pause",
            request(
                pb.PauseRequest, case_id, f"{tag}/pause", reason=pb.PAUSE_REASON_AWAITING_CUSTOMER
            ),
        ),
        ("Resume", request(pb.ResumeRequest, case_id, f"{tag}/resume")),
        ("Resolve", request(pb.ResolveRequest, case_id, f"{tag}/resolve", resolution_code="fix")),
        ("Reopen", request(pb.ReopenRequest, case_id, f"{tag}/reopen", reason="came back")),
    ]


@pytest.fixture
def case(stub: Stub) -> str:
    """An open case owned by Alice, so that a malformed command let through would be stored."""
    open_case(stub, "CASE-1")
    return "CASE-1"


@pytest.fixture
def head(ledger: Ledger, case: str) -> Iterator[int]:
    """The store's head position before the test; checked unchanged afterwards."""
    before = ledger.store.max_position()
    yield before
    assert ledger.store.max_position() == before, "a refused request must store nothing"


# --- missing required fields --------------------------------------------------------------------


def test_a_request_without_case_id_command_id_and_actor_is_refused_naming_all_three(
    stub: Stub, ledger: Ledger
) -> None:
    fields = invalid_fields(stub.Assign, pb.AssignRequest(owner=ALICE, tier=pb.TIER_L1))

    assert set(fields) == {"case_id", "command_id", "actor"}
    assert all("required" in description for description in fields.values())
    assert ledger.store.max_position() == 0
    assert all_events(stub) == []


@pytest.mark.parametrize("field", ["case_id", "command_id", "actor"])
def test_a_missing_common_id_is_refused_on_every_command_kind(
    stub: Stub, case: str, head: int, field: str
) -> None:
    for method, req in valid_requests(case, f"missing-{field}"):
        req.ClearField(field)
        fields = invalid_fields(getattr(stub, method), req)
        assert fields == {field: "is required"}, method


def test_join_and_leave_swarm_without_an_agent_id_are_refused(
    stub: Stub, case: str, head: int
) -> None:
    join = request(pb.JoinSwarmRequest, case, "join", group_id="g", role=pb.SWARM_ROLE_OBSERVER)
    assert set(invalid_fields(stub.JoinSwarm, join)) == {"agent_id"}
    assert set(invalid_fields(stub.LeaveSwarm, request(pb.LeaveSwarmRequest, case, "leave"))) == {
        "agent_id"
    }


# --- lengths ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field", ["case_id", "command_id", "actor", "owner.agent_id", "owner.group_id"]
)
def test_an_id_longer_than_128_characters_is_refused_and_128_are_accepted(
    stub: Stub, ledger: Ledger, field: str
) -> None:
    def assign_with(value: str, tag: str) -> pb.AssignRequest:
        req = request(pb.AssignRequest, f"CASE-{tag}", f"cmd-{tag}", owner=ALICE)
        holder, _, name = field.rpartition(".")
        setattr(getattr(req, holder) if holder else req, name, value)
        return req

    fields = invalid_fields(stub.Assign, assign_with("x" * 129, "long"))
    assert set(fields) == {field}
    assert "128" in fields[field]
    assert ledger.store.max_position() == 0

    accepted = stub.Assign(assign_with("y" * 128, "limit")).result
    assert accepted.events_recorded == 1


def test_ids_in_swarm_and_transfer_commands_are_length_checked_too(
    stub: Stub, case: str, head: int
) -> None:
    long = "z" * 129
    join = request(
        pb.JoinSwarmRequest,
        case,
        "join",
        agent_id=long,
        group_id=long,
        role=pb.SWARM_ROLE_CONSULTANT,
    )
    assert set(invalid_fields(stub.JoinSwarm, join)) == {"agent_id", "group_id"}
    leave = request(pb.LeaveSwarmRequest, case, "leave", agent_id=long)
    assert set(invalid_fields(stub.LeaveSwarm, leave)) == {"agent_id"}
    transfer = request(
        pb.TransferRequest,
        case,
        "transfer",
        to_owner=pb.Owner(agent_id=long, group_id=long),
        reason=pb.TRANSFER_REASON_REROUTE,
    )
    assert set(invalid_fields(stub.Transfer, transfer)) == {
        "to_owner.agent_id",
        "to_owner.group_id",
    }


def test_a_note_longer_than_4096_characters_is_refused_and_4096_are_accepted(
    stub: Stub, ledger: Ledger
) -> None:
    too_long = request(pb.AssignRequest, "CASE-N", "cmd-long", owner=ALICE, note="n" * 4097)
    fields = invalid_fields(stub.Assign, too_long)
    assert set(fields) == {"note"}
    assert "4096" in fields["note"]
    assert ledger.store.max_position() == 0

    at_limit = request(pb.AssignRequest, "CASE-N", "cmd-limit", owner=ALICE, note="n" * 4096)
    assert stub.Assign(at_limit).result.events_recorded == 1
    (event,) = all_events(stub)
    assert event.assigned.note == "n" * 4096


def test_long_free_text_is_refused_before_the_case_is_even_looked_up(stub: Stub) -> None:
    """Shape comes first: an unknown case with a bad field is INVALID_ARGUMENT, not NOT_FOUND."""
    text = "t" * 4097
    resolve = request(pb.ResolveRequest, "NO-SUCH-CASE", "r", resolution_code=text, note=text)
    assert set(invalid_fields(stub.Resolve, resolve)) == {"resolution_code", "note"}
    reopen = request(pb.ReopenRequest, "NO-SUCH-CASE", "o", reason=text)
    assert set(invalid_fields(stub.Reopen, reopen)) == {"reason"}
    resume = request(pb.ResumeRequest, "NO-SUCH-CASE", "s", note="\x07")
    assert set(invalid_fields(stub.Resume, resume)) == {"note"}
    assert all_events(stub) == []


# --- characters ---------------------------------------------------------------------------------

# NUL, ESC, DEL, a C1 control, the right-to-left override, a zero-width space, a byte-order mark.
BAD_ID_CHARACTERS = ["\x00", "\x1b", "\x7f", "\x85", "\u202e", "\u200b", "\ufeff"]


@pytest.mark.parametrize(
    "field", ["case_id", "command_id", "actor", "owner.agent_id", "owner.group_id"]
)
def test_control_and_invisible_characters_in_ids_are_refused(
    stub: Stub, ledger: Ledger, field: str
) -> None:
    for i, bad in enumerate(BAD_ID_CHARACTERS):
        req = request(pb.AssignRequest, f"CASE-{i}", f"cmd-{i}", owner=ALICE)
        holder, _, name = field.rpartition(".")
        target = getattr(req, holder) if holder else req
        setattr(target, name, f"{getattr(target, name) or 'id'}{bad}tail")
        fields = invalid_fields(stub.Assign, req)
        assert set(fields) == {field}, repr(bad)
        assert "control" in fields[field]
    assert ledger.store.max_position() == 0


@pytest.mark.parametrize("field", ["case_id", "command_id"])
def test_a_nul_in_a_case_or_command_id_is_refused_as_invalid_not_a_server_fault(
    stub: Stub, case: str, head: int, field: str
) -> None:
    """Whatever the store does with ids, a NUL in one is the caller's mistake: INVALID_ARGUMENT
    naming the field, never a server fault (PostgreSQL text cannot even hold a NUL)."""
    for method, req in valid_requests(case, "nul"):
        setattr(req, field, f"{getattr(req, field)}\x00nul")
        error = refusal(getattr(stub, method), req)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, error.details())
        assert set(violations(error)) == {field}, method


def test_a_malformed_request_does_not_fail_the_requests_of_other_callers(
    stub: Stub, ledger: Ledger
) -> None:
    """Concurrent single commands may be written together; a bad one must fail alone."""
    malformed = [
        request(pb.AssignRequest, "BAD-1", "bad\x00id", owner=ALICE),
        request(pb.AssignRequest, "BAD\x002", "bad-2", owner=ALICE),
        request(pb.AssignRequest, "BAD-3", "bad-3", owner=pb.Owner(agent_id="a\x00b")),
        request(pb.AssignRequest, "BAD-4", "bad-4", owner=ALICE, note="nul\x00"),
    ]
    good = [request(pb.AssignRequest, f"GOOD-{i}", f"good-{i}", owner=ALICE) for i in range(12)]
    everyone = malformed + good
    start = threading.Barrier(len(everyone))

    def send(req: pb.AssignRequest) -> grpc.StatusCode:
        start.wait()
        call = stub.Assign.future(req)
        error = call.exception()
        return grpc.StatusCode.OK if error is None else error.code()

    with ThreadPoolExecutor(len(everyone)) as pool:
        codes = list(pool.map(send, everyone))

    names = [code.name for code in codes]
    assert names == ["INVALID_ARGUMENT"] * len(malformed) + ["OK"] * len(good), " ".join(names)
    assert sorted(e.case_id for e in all_events(stub)) == sorted(r.case_id for r in good)


def test_ids_with_leading_or_trailing_white_space_are_refused(stub: Stub, ledger: Ledger) -> None:
    for i, padded in enumerate([" CASE", "CASE ", "\u3000CASE"]):
        req = request(pb.AssignRequest, padded, f"cmd-{i}", owner=ALICE)
        assert set(invalid_fields(stub.Assign, req)) == {"case_id"}, repr(padded)
    assert ledger.store.max_position() == 0


def test_control_characters_in_free_text_are_refused(stub: Stub, case: str, head: int) -> None:
    for i, bad in enumerate(["\x07", "\x00", "\x1b[2J", "\x7f"]):
        pause = request(
            pb.PauseRequest,
            case,
            f"pause-{i}",
            reason=pb.PAUSE_REASON_AWAITING_CUSTOMER,
            note=f"waiting{bad}",
        )
        assert set(invalid_fields(stub.Pause, pause)) == {"note"}, repr(bad)
        reopen = request(pb.ReopenRequest, case, f"reopen-{i}", reason=f"r{bad}")
        assert set(invalid_fields(stub.Reopen, reopen)) == {"reason"}, repr(bad)
        resolve = request(pb.ResolveRequest, case, f"resolve-{i}", resolution_code=f"c{bad}")
        assert set(invalid_fields(stub.Resolve, resolve)) == {"resolution_code"}, repr(bad)


def test_newlines_tabs_and_emoji_in_a_note_are_accepted_and_stored_verbatim(
    stub: Stub, case: str
) -> None:
    note = "line one\nline two\n\tindented \U0001f468\u200d\U0001f4bb done"
    pause = request(
        pb.PauseRequest, case, "pause", reason=pb.PAUSE_REASON_AWAITING_THIRD_PARTY, note=note
    )
    result = stub.Pause(pause).result
    assert result.events_recorded == 1

    (event,) = stub.ReadCase(pb.ReadCaseRequest(case_id=case, after_version=1)).events
    assert event.paused.note == note


# --- enums --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "build", "field", "number"),
    [
        (
            "Transfer",
            lambda case: request(pb.TransferRequest, case, "t", to_owner=BOB, reason=99),
            "reason",
            99,
        ),
        (
            "Transfer",
            lambda case: request(
                pb.TransferRequest,
                case,
                "t",
                to_owner=BOB,
                reason=pb.TRANSFER_REASON_ESCALATION,
                tier=77,
            ),
            "tier",
            77,
        ),
        (
            "Transfer",
            lambda case: request(pb.TransferRequest, case, "t", to_owner=BOB, reason=-1),
            "reason",
            -1,
        ),
        (
            "JoinSwarm",
            lambda case: request(pb.JoinSwarmRequest, case, "j", agent_id="carol", role=42),
            "role",
            42,
        ),
        (
            "Pause",
            lambda case: request(pb.PauseRequest, case, "p", reason=9),
            "reason",
            9,
        ),
        (
            "Assign",
            lambda case: request(pb.AssignRequest, "CASE-NEW", "a", owner=ALICE, tier=77),
            "tier",
            77,
        ),
    ],
    ids=["transfer-reason", "transfer-tier", "negative-reason", "join-role", "pause", "assign"],
)
def test_an_unknown_enum_number_is_refused_naming_the_field(
    stub: Stub,
    case: str,
    head: int,
    method: str,
    build: Callable[[str], Any],
    field: str,
    number: int,
) -> None:
    fields = invalid_fields(getattr(stub, method), build(case))
    assert set(fields) == {field}
    assert str(number) in fields[field]


def test_a_required_enum_left_unspecified_is_refused(stub: Stub, case: str, head: int) -> None:
    transfer = request(pb.TransferRequest, case, "t", to_owner=BOB)
    assert invalid_fields(stub.Transfer, transfer) == {"reason": "is required"}
    join = request(pb.JoinSwarmRequest, case, "j", agent_id="carol")
    assert invalid_fields(stub.JoinSwarm, join) == {"role": "is required"}
    pause = request(pb.PauseRequest, case, "p")
    assert invalid_fields(stub.Pause, pause) == {"reason": "is required"}


def test_an_unspecified_tier_is_optional(stub: Stub) -> None:
    assert stub.Assign(request(pb.AssignRequest, "C", "a", owner=ALICE)).result.version == 1
    transfer = request(
        pb.TransferRequest, "C", "t", to_owner=BOB, reason=pb.TRANSFER_REASON_REROUTE
    )
    assert stub.Transfer(transfer).result.version == 2
    assigned, transferred = all_events(stub)
    assert assigned.assigned.tier == pb.TIER_UNSPECIFIED
    assert transferred.transferred.to_tier == pb.TIER_UNSPECIFIED


# --- owners -------------------------------------------------------------------------------------


def test_an_owner_with_neither_agent_nor_group_is_refused(stub: Stub, case: str, head: int) -> None:
    assert set(invalid_fields(stub.Assign, request(pb.AssignRequest, "NEW", "a1"))) == {"owner"}
    empty_owner = request(pb.AssignRequest, "NEW", "a2", owner=pb.Owner())
    assert set(invalid_fields(stub.Assign, empty_owner)) == {"owner"}
    transfer = request(
        pb.TransferRequest,
        case,
        "t",
        to_owner=pb.Owner(),
        reason=pb.TRANSFER_REASON_WORKLOAD_BALANCING,
    )
    assert set(invalid_fields(stub.Transfer, transfer)) == {"to_owner"}


def test_an_owner_may_be_a_person_a_group_queue_or_both(stub: Stub) -> None:
    for i, owner in enumerate(
        [
            pb.Owner(agent_id="alice"),
            pb.Owner(group_id="queue"),
            pb.Owner(agent_id="a", group_id="q"),
        ]
    ):
        assert stub.Assign(request(pb.AssignRequest, f"C{i}", f"a{i}", owner=owner)).result.version
    stored = [e.assigned.owner for e in all_events(stub)]
    assert [(o.agent_id, o.group_id) for o in stored] == [("alice", ""), ("", "queue"), ("a", "q")]


# --- times and versions -------------------------------------------------------------------------


def test_an_occurred_at_beyond_the_allowed_clock_skew_is_refused(
    stub: Stub, case: str, head: int
) -> None:
    now = datetime.now(UTC)
    for i, ahead in enumerate([timedelta(minutes=10), timedelta(days=365), timedelta(days=3000)]):
        pause = request(
            pb.PauseRequest,
            case,
            f"p{i}",
            reason=pb.PAUSE_REASON_SCHEDULED,
            occurred_at=ts(now + ahead),
        )
        fields = invalid_fields(stub.Pause, pause)
        assert set(fields) == {"occurred_at"}
        assert "future" in fields["occurred_at"]
    latest = request(
        pb.ResumeRequest, case, "r", occurred_at=Timestamp(seconds=253402300799, nanos=999999999)
    )
    assert set(invalid_fields(stub.Resume, latest)) == {"occurred_at"}


def test_an_occurred_at_within_the_clock_skew_or_in_the_past_is_accepted_as_sent(
    stub: Stub, case: str
) -> None:
    soon = datetime.now(UTC).replace(microsecond=123456) + timedelta(minutes=1)
    long_ago = datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)
    pause = request(
        pb.PauseRequest, case, "p", reason=pb.PAUSE_REASON_SCHEDULED, occurred_at=ts(soon)
    )
    assert stub.Pause(pause).result.version == 2
    assert stub.Resume(request(pb.ResumeRequest, case, "r", occurred_at=ts(long_ago))).result

    paused, resumed = stub.ReadCase(pb.ReadCaseRequest(case_id=case, after_version=1)).events
    assert paused.occurred_at.ToDatetime(tzinfo=UTC) == soon
    assert resumed.occurred_at.ToDatetime(tzinfo=UTC) == long_ago


def test_the_extreme_representable_timestamps_are_accepted_and_read_back(
    stub: Stub, case: str
) -> None:
    first = Timestamp(seconds=MIN_SECONDS)
    last = Timestamp(seconds=MAX_SECONDS, nanos=999_999_000)
    transfer = request(
        pb.TransferRequest,
        case,
        "t",
        to_owner=BOB,
        reason=pb.TRANSFER_REASON_OTHER,
        occurred_at=first,
        eta=last,
    )
    assert stub.Transfer(transfer).result.version == 2
    pause = request(pb.PauseRequest, case, "p", reason=pb.PAUSE_REASON_SCHEDULED, until=last)
    assert stub.Pause(pause).result.version == 3

    transferred, paused = stub.ReadCase(pb.ReadCaseRequest(case_id=case, after_version=1)).events
    assert transferred.occurred_at == first
    assert transferred.transferred.eta == last
    assert paused.paused.until == last


def test_a_timestamp_outside_the_representable_range_is_refused(
    stub: Stub, case: str, head: int
) -> None:
    beyond = Timestamp(seconds=253402300800)
    before_year_one = Timestamp(seconds=-62135596801)
    bad_nanos = Timestamp(seconds=0, nanos=-1)
    transfer = request(
        pb.TransferRequest,
        case,
        "t",
        to_owner=BOB,
        reason=pb.TRANSFER_REASON_SHIFT_HANDOVER,
        occurred_at=before_year_one,
        eta=beyond,
    )
    assert set(invalid_fields(stub.Transfer, transfer)) == {"occurred_at", "eta"}
    pause = request(pb.PauseRequest, case, "p", reason=pb.PAUSE_REASON_SCHEDULED, until=bad_nanos)
    assert set(invalid_fields(stub.Pause, pause)) == {"until"}


def test_a_negative_expected_version_is_refused(stub: Stub, case: str, head: int) -> None:
    resume = request(pb.ResumeRequest, case, "r", expected_version=-1)
    assert set(invalid_fields(stub.Resume, resume)) == {"expected_version"}


# --- several problems at once -------------------------------------------------------------------


def test_several_bad_fields_of_one_request_are_reported_together(
    stub: Stub, case: str, head: int
) -> None:
    shape = request(
        pb.AssignRequest,
        "c" * 129,
        "cmd\x1b",
        actor="",
        owner=pb.Owner(agent_id="a" * 129, group_id="g\u202e"),
        note="\x07",
        occurred_at=ts(datetime.now(UTC) + timedelta(hours=1)),
        expected_version=-3,
    )
    assert set(invalid_fields(stub.Assign, shape)) == {
        "case_id",
        "command_id",
        "actor",
        "owner.agent_id",
        "owner.group_id",
        "note",
        "occurred_at",
        "expected_version",
    }

    wire = request(pb.TransferRequest, case, "t", to_owner=pb.Owner(), tier=77)
    assert set(invalid_fields(stub.Transfer, wire)) == {"to_owner", "reason", "tier"}


def test_enum_and_length_problems_of_one_request_are_reported_together(
    stub: Stub, case: str, head: int
) -> None:
    """The caller learns every problem at once, whichever layer finds it."""
    req = request(pb.TransferRequest, case, "t" * 129, to_owner=BOB, note="\x07")
    assert set(invalid_fields(stub.Transfer, req)) == {"reason", "command_id", "note"}


# --- what a refusal leaves behind ---------------------------------------------------------------


def test_a_refused_request_does_not_use_up_its_command_id(stub: Stub) -> None:
    bad = request(pb.AssignRequest, "C", "cmd-1", owner=pb.Owner())
    invalid_fields(stub.Assign, bad)

    good = request(pb.AssignRequest, "C", "cmd-1", owner=ALICE)
    result = stub.Assign(good).result
    assert (result.events_recorded, result.replayed) == (1, False)


def test_a_batch_over_its_size_limit_is_refused_as_a_whole(database_url: str) -> None:
    small = start_ledger(database_url, max_batch_commands=3)
    try:
        with channel(f"127.0.0.1:{small.server.port}") as chan:
            stub = ledger_pb2_grpc.LedgerServiceStub(chan)
            commands = [
                pb.BatchCommand(assign=request(pb.AssignRequest, f"C{i}", f"a{i}", owner=ALICE))
                for i in range(4)
            ]
            fields = invalid_fields(stub.ExecuteBatch, pb.ExecuteBatchRequest(commands=commands))
            assert set(fields) == {"commands"}
            assert "3" in fields["commands"]
            assert small.store.max_position() == 0
            assert all_events(stub) == []

            results = stub.ExecuteBatch(pb.ExecuteBatchRequest(commands=commands[:3])).results
            assert [r.result.events_recorded for r in results] == [1, 1, 1]
            assert len(all_events(stub)) == 3
    finally:
        small.stop(grace=1)


# --- random and adversarial requests ------------------------------------------------------------

CASE_POOL = ["case-a", "case-b", "case-c"]
COMMAND_POOL = [f"cmd-{i}" for i in range(8)]
AGENT_POOL = ["alice", "bob", "carol", "dave"]
ADVERSARIAL = [
    "",
    " ",
    " padded",
    "x" * 129,
    "nul\x00",
    "esc\x1b[31m",
    "rtl\u202e",
    "bell\x07",
    "line\nbreak",
    "tab\t",
    "\U0001f600",
    "é",
]
# Fixed once, so that Hypothesis draws the same way when it replays an example.
NOW_SECONDS = int(datetime.now(UTC).timestamp())

# Protobuf strings must be valid UTF-8: no lone surrogates, everything else goes.
any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
adversarial_text = st.one_of(st.sampled_from(ADVERSARIAL), any_text)


def mostly(usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any], odds: int = 8) -> Any:
    """``usual`` about ``odds`` times out of ``odds + 1``, otherwise ``odd``.

    Each field is usually well-formed, so that a fair share of whole requests gets past validation
    and reaches the rules, the idempotency records and the version checks.
    """
    return st.integers(0, odds).flatmap(lambda n: odd if n == odds else usual)


def maybe(present: st.SearchStrategy[Any]) -> Any:
    return st.one_of(st.none(), st.none(), present)


ids_of_cases = mostly(
    st.one_of(
        st.sampled_from(CASE_POOL),
        st.sampled_from(CASE_POOL),
        st.integers(0, 10**9).map("case-{}".format),
    ),
    adversarial_text,
    odds=12,
)
ids_of_commands = mostly(
    st.one_of(st.sampled_from(COMMAND_POOL), st.integers(0, 10**9).map("fresh-{}".format)),
    adversarial_text,
    odds=10,
)
actors = mostly(st.just("tester"), adversarial_text, odds=20)
agents = mostly(st.sampled_from(AGENT_POOL), adversarial_text, odds=12)
groups = mostly(st.sampled_from(["", "desk", "l2"]), adversarial_text, odds=12)
notes = mostly(
    st.sampled_from(["", "note", "ok\n\tfine", "n" * 4096]),
    st.one_of(any_text, st.sampled_from(["\x07", "n" * 4097, "\x1b[0m"])),
    odds=20,
)
expected_versions = st.one_of(
    st.none(),
    st.none(),
    mostly(st.integers(0, 6), st.sampled_from([-1, 2**63 - 1, -(2**63)]), odds=6),
)


def enum_numbers(highest: int) -> Any:
    return mostly(st.integers(1, highest), st.integers(-(2**31), 2**31 - 1), odds=10)


@st.composite
def timestamps(draw: st.DrawFn) -> Timestamp:
    now = NOW_SECONDS
    seconds = draw(
        mostly(
            st.integers(now - 86400 * 365, now + 60),
            st.one_of(
                st.integers(now + 360, now + 86400 * 365),  # beyond the allowed clock skew
                st.sampled_from([MIN_SECONDS, MAX_SECONDS, MIN_SECONDS - 1, MAX_SECONDS + 1]),
                st.integers(-(2**40), 2**40),
            ),
            odds=4,
        )
    )
    nanos = draw(mostly(st.integers(0, 999_999_999), st.integers(-5, 2**31 - 1), odds=10))
    return Timestamp(seconds=seconds, nanos=nanos)


owners = st.builds(pb.Owner, agent_id=agents, group_id=groups)


@st.composite
def commands(draw: st.DrawFn) -> pb.BatchCommand:
    common: dict[str, Any] = {
        "case_id": draw(ids_of_cases),
        "command_id": draw(ids_of_commands),
        "actor": draw(actors),
    }
    expected = draw(expected_versions)
    if expected is not None:
        common["expected_version"] = expected
    occurred = draw(maybe(timestamps()))
    if occurred is not None:
        common["occurred_at"] = occurred
    kind = draw(
        st.sampled_from(
            [
                "assign",
                "assign",
                "transfer",
                "join_swarm",
                "leave_swarm",
                "pause",
                "resume",
                "resolve",
                "reopen",
            ]
        )
    )
    note = draw(notes)
    if kind == "assign":
        message: Message = pb.AssignRequest(
            **common,
            owner=draw(owners),
            tier=draw(st.one_of(st.just(0), enum_numbers(4))),
            note=note,
        )
    elif kind == "transfer":
        message = pb.TransferRequest(
            **common,
            to_owner=draw(owners),
            reason=draw(enum_numbers(7)),
            tier=draw(st.one_of(st.just(0), enum_numbers(4))),
            note=note,
            warm=draw(st.booleans()),
        )
        eta = draw(maybe(timestamps()))
        if eta is not None:
            message.eta.CopyFrom(eta)
    elif kind == "join_swarm":
        message = pb.JoinSwarmRequest(
            **common,
            agent_id=draw(agents),
            group_id=draw(groups),
            role=draw(enum_numbers(3)),
            note=note,
        )
    elif kind == "leave_swarm":
        message = pb.LeaveSwarmRequest(**common, agent_id=draw(agents), note=note)
    elif kind == "pause":
        message = pb.PauseRequest(**common, reason=draw(enum_numbers(3)), note=note)
        until = draw(maybe(timestamps()))
        if until is not None:
            message.until.CopyFrom(until)
    elif kind == "resume":
        message = pb.ResumeRequest(**common, note=note)
    elif kind == "resolve":
        message = pb.ResolveRequest(**common, resolution_code=draw(notes), note=note)
    else:
        message = pb.ReopenRequest(**common, reason=draw(notes), note=note)
    return pb.BatchCommand(**{kind: message})


# Codes a caller's request may earn; INTERNAL, UNKNOWN and the rest would be server faults here.
CALLER_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT.value[0],
    grpc.StatusCode.NOT_FOUND.value[0],
    grpc.StatusCode.FAILED_PRECONDITION.value[0],
    grpc.StatusCode.ABORTED.value[0],
    grpc.StatusCode.ALREADY_EXISTS.value[0],
}
# A step sends one command alone, a few as one batch, or resends an earlier command of the example.
steps = st.one_of(
    commands(),
    st.lists(commands(), min_size=1, max_size=4).map(tuple),
    st.integers(0, 20),
)


def test_random_requests_never_fail_internally_and_only_accepted_commands_are_stored(
    stub: Stub,
) -> None:
    first_answer: dict[str, pb.AppendResult] = {}  # command_id → its original (non-replayed) answer

    def record(result: pb.AppendResult) -> None:
        if result.replayed:
            original = first_answer.get(result.command_id)
            assert original is not None, f"replayed an answer never given: {result}"
            assert (result.version, result.position, result.events_recorded) == (
                original.version,
                original.position,
                original.events_recorded,
            )
        else:
            assert result.command_id not in first_answer, f"accepted twice: {result.command_id!r}"
            first_answer[result.command_id] = result

    def send_alone(command: pb.BatchCommand) -> None:
        kind = command.WhichOneof("command")
        call = getattr(stub, RPC_OF[kind]).future(getattr(command, kind))
        error = call.exception()
        if error is None:
            record(call.result().result)
        else:
            assert error.code().value[0] in CALLER_CODES, (error.code(), error.details())

    def send_batch(batch: tuple[pb.BatchCommand, ...]) -> None:
        results = stub.ExecuteBatch(pb.ExecuteBatchRequest(commands=batch)).results
        assert len(results) == len(batch)
        for item in results:
            if item.HasField("error"):
                assert item.error.code in CALLER_CODES, item.error
            else:
                record(item.result)

    @settings(
        max_examples=60,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(steps, min_size=1, max_size=10))
    def run(plan: list[pb.BatchCommand | tuple[pb.BatchCommand, ...] | int]) -> None:
        sent: list[pb.BatchCommand] = []
        for step in plan:
            if isinstance(step, int):
                if sent:
                    send_alone(sent[step % len(sent)])
            elif isinstance(step, tuple):
                send_batch(step)
                sent.extend(step)
            else:
                send_alone(step)
                sent.append(step)

        stored = all_events(stub)
        accepted = {cid for cid, answer in first_answer.items() if answer.events_recorded > 0}
        assert {event.command_id for event in stored} <= accepted
        assert len(stored) == sum(a.events_recorded for a in first_answer.values())
        for answer in first_answer.values():
            if answer.events_recorded:
                own = [e for e in stored if e.command_id == answer.command_id]
                assert len(own) == answer.events_recorded
                assert own[-1].version == answer.version
                assert own[-1].position == answer.position
        assert [e.position for e in stored] == list(range(1, len(stored) + 1))

    run()

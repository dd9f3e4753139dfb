"""QueryService over gRPC: stories told through LedgerService, answers checked by hand.

Every command carries an explicit ``occurred_at`` (a fixed day in the past), so tenures that have
ended have exact lengths. Every query passes ``min_position`` = the position the latest append
returned, so it must see that write (read-your-writes). Both backends run every test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from ownership.v1 import ledger_pb2 as pb
from ownership.v1 import ledger_pb2_grpc, query_pb2_grpc
from ownership.v1 import query_pb2 as q
from services.ledger.api.server import channel
from tests.e2e.conftest import start_ledger
from tests.e2e.wire import details, refusal, ts

QueryStub = query_pb2_grpc.QueryServiceStub
DAY = datetime(2024, 3, 4, tzinfo=UTC)
PERSON, GROUP = q.OWNERSHIP_LEVEL_PERSON, q.OWNERSHIP_LEVEL_GROUP
CUSTOMER = pb.PAUSE_REASON_AWAITING_CUSTOMER
THIRD_PARTY = pb.PAUSE_REASON_AWAITING_THIRD_PARTY
SCHEDULED = pb.PAUSE_REASON_SCHEDULED
QUERY_TIMEOUT = 15.0
KNOWN_POLICIES = (
    "EqualSplit@1",
    "FirstOwnerTakesAll@1",
    "OverlayAssists@1",
    "OwnerBonus(0.5)@1",
    "ResolverTakesAll@1",
    "TimeWeighted@1",
)


# --- helpers ------------------------------------------------------------------------------------


def at(clock: str) -> datetime:
    """The story day at ``HH:MM``."""
    hours, minutes = clock.split(":")
    return DAY + timedelta(hours=int(hours), minutes=int(minutes))


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def when(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def owner(agent_id: str = "", group_id: str = "") -> pb.Owner:
    return pb.Owner(agent_id=agent_id, group_id=group_id)


def paused(times: Any) -> dict[int, timedelta]:
    """PausedTime entries as {reason: duration}; every duration must be positive."""
    found = {p.reason: p.duration.ToTimedelta() for p in times}
    assert len(found) == len(times), "a pause reason is listed twice"
    assert all(d > timedelta(0) for d in found.values()), f"a non-positive paused time: {found}"
    return found


class Queries:
    """QueryService calls that carry a deadline, as every well-behaved caller's do.

    (A call without a deadline that has to wait for the projector fails: see the xfail test
    ``test_a_query_without_a_deadline_waits_for_its_position``.)
    """

    def __init__(self, stub: QueryStub, timeout: float = QUERY_TIMEOUT) -> None:
        self._stub = stub
        self._timeout = timeout

    def __getattr__(self, rpc: str) -> Callable[..., Any]:
        call = getattr(self._stub, rpc)

        def with_deadline(request: Message, **kwargs: Any) -> Any:
            return call(request, **({"timeout": self._timeout} | kwargs))

        return with_deadline


class Desk:
    """Tells stories through LedgerService and remembers the latest position appended."""

    def __init__(self, stub: ledger_pb2_grpc.LedgerServiceStub, query: QueryStub) -> None:
        self.stub = stub
        self.raw_query = query
        self.query: Any = Queries(query)
        self.position = 0

    def case(self, case_id: str) -> Story:
        return Story(self, case_id)


class Story:
    """One case's commands, each with a fresh command_id and an explicit occurred_at."""

    def __init__(self, desk: Desk, case_id: str) -> None:
        self.desk = desk
        self.case_id = case_id
        self.sent = 0

    def _send(self, rpc: str, kind: type[Message], occurred: datetime, **fields: Any) -> Any:
        self.sent += 1
        request = kind(
            case_id=self.case_id,
            command_id=f"{self.case_id}/{self.sent}",
            actor="tester",
            occurred_at=ts(occurred),
            **fields,
        )
        result = getattr(self.desk.stub, rpc)(request).result
        assert result.events_recorded > 0, f"{rpc} recorded nothing"
        self.desk.position = max(self.desk.position, result.position)
        return result

    def assign(self, occurred: datetime, agent: str = "", group: str = "", tier: int = 0) -> Any:
        return self._send(
            "Assign", pb.AssignRequest, occurred, owner=owner(agent, group), tier=tier
        )

    def transfer(
        self,
        occurred: datetime,
        agent: str = "",
        group: str = "",
        tier: int = 0,
        warm: bool = False,
    ) -> Any:
        return self._send(
            "Transfer",
            pb.TransferRequest,
            occurred,
            to_owner=owner(agent, group),
            reason=pb.TRANSFER_REASON_ESCALATION,
            tier=tier,
            warm=warm,
        )

    def join(self, occurred: datetime, agent: str, group: str, role: int) -> Any:
        return self._send(
            "JoinSwarm", pb.JoinSwarmRequest, occurred, agent_id=agent, group_id=group, role=role
        )

    def leave(self, occurred: datetime, agent: str) -> Any:
        return self._send("LeaveSwarm", pb.LeaveSwarmRequest, occurred, agent_id=agent)

    def pause(self, occurred: datetime, reason: int, until: datetime | None = None) -> Any:
        extra = {"until": ts(until)} if until else {}
        return self._send("Pause", pb.PauseRequest, occurred, reason=reason, **extra)

    def resume(self, occurred: datetime) -> Any:
        return self._send("Resume", pb.ResumeRequest, occurred)

    def resolve(self, occurred: datetime) -> Any:
        return self._send("Resolve", pb.ResolveRequest, occurred, resolution_code="fixed")

    def reopen(self, occurred: datetime) -> Any:
        return self._send("Reopen", pb.ReopenRequest, occurred, reason="came back")


def assert_invalid(error: grpc.RpcError, field: str) -> None:
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    (bad_request,) = details(error, error_details_pb2.BadRequest)
    assert [v.field for v in bad_request.field_violations] == [field]


@pytest.fixture
def query(grpc_channel: grpc.Channel) -> QueryStub:
    return query_pb2_grpc.QueryServiceStub(grpc_channel)


@pytest.fixture
def desk(stub: ledger_pb2_grpc.LedgerServiceStub, query: QueryStub) -> Desk:
    return Desk(stub, query)


def current(desk: Desk, case_id: str) -> q.CaseOwnership:
    request = q.GetCurrentOwnerRequest(case_id=case_id, min_position=desk.position)
    return desk.query.GetCurrentOwner(request).case


def intervals(desk: Desk, case_id: str, level: int = 0) -> list[q.OwnershipInterval]:
    request = q.GetOwnershipIntervalsRequest(
        case_id=case_id, level=level, min_position=desk.position
    )
    return list(desk.query.GetOwnershipIntervals(request).intervals)


def spans(found: list[q.OwnershipInterval]) -> list[tuple[str, datetime, datetime | None]]:
    """(holder, start, end or None while open), in the order returned."""
    return [(i.holder, when(i.start), when(i.end) if i.HasField("end") else None) for i in found]


def owner_at(desk: Desk, case_id: str, instant: datetime) -> q.GetOwnerAtResponse:
    return desk.query.GetOwnerAt(
        q.GetOwnerAtRequest(case_id=case_id, at=ts(instant), min_position=desk.position)
    )


def durations(desk: Desk, scope: int, key: str = "", **fields: Any) -> list[q.DurationTotal]:
    request = q.GetDurationsRequest(scope=scope, key=key, min_position=desk.position, **fields)
    return list(desk.query.GetDurations(request).totals)


def total(found: q.DurationTotal) -> tuple[str, timedelta, dict[int, timedelta], timedelta, int]:
    return (
        found.key,
        found.owned.ToTimedelta(),
        paused(found.paused),
        found.working.ToTimedelta(),
        found.tenures,
    )


def credit(desk: Desk, policy: str = "", **who: str) -> q.GetCreditResponse:
    return desk.query.GetCredit(
        q.GetCreditRequest(policy=policy, min_position=desk.position, **who)
    )


def lines(report: q.GetCreditResponse) -> list[tuple[str, str, str, float, str, int, datetime]]:
    return [
        (x.case_id, x.agent_id, x.group_id, x.amount, x.kind, x.resolution_seq, when(x.at))
        for x in report.lines
    ]


# --- GetCurrentOwner ------------------------------------------------------------------------------


def test_current_owner_reports_owner_status_tier_swarm_and_version(desk: Desk) -> None:
    case = desk.case("C-CUR")
    case.assign(at("09:00"), "alice", "desk", pb.TIER_L1)
    case.transfer(at("09:30"), "bob", "network", pb.TIER_L2, warm=True)
    case.join(at("09:40"), "dave", "security", pb.SWARM_ROLE_OBSERVER)
    case.join(at("09:45"), "carol", "dba", pb.SWARM_ROLE_CONSULTANT)
    last = case.pause(at("09:50"), THIRD_PARTY)

    before = datetime.now(UTC)
    now = current(desk, "C-CUR")
    after = datetime.now(UTC)
    assert now.case_id == "C-CUR"
    assert now.owner == owner("bob", "network")
    assert now.status == q.CASE_STATUS_PAUSED
    assert now.pause_reason == THIRD_PARTY
    assert now.tier == pb.TIER_L2
    assert list(now.participants) == [
        q.Participant(agent_id="carol", group_id="dba", role=pb.SWARM_ROLE_CONSULTANT),
        q.Participant(agent_id="dave", group_id="security", role=pb.SWARM_ROLE_OBSERVER),
    ]
    assert (now.version, now.last_position) == (5, last.position) == (last.version, last.position)
    assert when(now.opened_at) == at("09:00")
    assert when(now.owned_since) == at("09:30")
    assert before - at("09:30") <= now.held_for.ToTimedelta() <= after - at("09:30")

    case.resume(at("10:00"))
    last = case.leave(at("10:05"), "carol")
    now = current(desk, "C-CUR")
    assert (now.status, now.pause_reason) == (q.CASE_STATUS_OPEN, pb.PAUSE_REASON_UNSPECIFIED)
    assert [p.agent_id for p in now.participants] == ["dave"]
    assert (now.version, now.last_position) == (7, last.position)

    last = case.resolve(at("10:30"))  # also ends dave's participation: two events
    now = current(desk, "C-CUR")
    assert now.status == q.CASE_STATUS_RESOLVED
    assert now.owner == owner("bob", "network")
    assert list(now.participants) == []
    assert (now.version, now.last_position) == (9, last.position) == (last.version, last.position)
    assert now.held_for.ToTimedelta() == timedelta(0)


# --- ListCasesByOwner ---------------------------------------------------------------------------


def test_cases_by_owner_lists_open_cases_of_an_agent_or_group_oldest_tenure_first(
    desk: Desk,
) -> None:
    desk.case("A-1").assign(at("09:00"), "alice", "desk")
    moved_in = desk.case("A-2")
    moved_in.assign(at("08:00"), "bob", "desk")
    moved_in.transfer(at("10:00"), "alice", "desk")
    desk.case("A-3").assign(at("07:00"), "alice", "network")
    resolved = desk.case("A-4")
    resolved.assign(at("06:00"), "alice", "desk")
    resolved.resolve(at("06:30"))
    desk.case("A-5").assign(at("05:00"), "erin", "desk")
    desk.case("A-6").assign(at("04:00"), group="desk")  # the desk's queue
    moved_out = desk.case("A-7")
    moved_out.assign(at("03:00"), "alice", "desk")
    moved_out.transfer(at("03:30"), "bob", "desk")

    def listed(limit: int = 0, **who: str) -> list[tuple[str, pb.Owner]]:
        request = q.ListCasesByOwnerRequest(limit=limit, min_position=desk.position, **who)
        return [(c.case_id, c.owner) for c in desk.query.ListCasesByOwner(request).cases]

    assert listed(agent_id="alice") == [
        ("A-3", owner("alice", "network")),
        ("A-1", owner("alice", "desk")),
        ("A-2", owner("alice", "desk")),
    ]
    assert [case_id for case_id, _ in listed(agent_id="alice", limit=2)] == ["A-3", "A-1"]
    assert [case_id for case_id, _ in listed(group_id="desk")] == [
        "A-7",
        "A-6",
        "A-5",
        "A-1",
        "A-2",
    ]
    assert [case_id for case_id, _ in listed(agent_id="bob")] == ["A-7"]
    assert listed(agent_id="nobody") == []


def test_cases_by_owner_needs_exactly_one_of_agent_and_group(desk: Desk) -> None:
    desk.case("A-1").assign(at("09:00"), "alice", "desk")
    for who in ({}, {"agent_id": "alice", "group_id": "desk"}):
        request = q.ListCasesByOwnerRequest(min_position=desk.position, **who)
        assert_invalid(refusal(desk.query.ListCasesByOwner, request), "agent_id or group_id")


# --- GetOwnerAt ---------------------------------------------------------------------------------


def test_owner_at_an_instant_follows_transfers_and_the_swarm_in_event_time(desk: Desk) -> None:
    case = desk.case("C-AT")
    case.assign(at("09:00"), "alice", "desk", pb.TIER_L1)
    case.join(at("09:20"), "carol", "dba", pb.SWARM_ROLE_CONSULTANT)
    case.transfer(at("09:40"), "bob", "network", pb.TIER_L2)
    case.leave(at("10:00"), "carol")
    case.resolve(at("10:30"))
    carol = q.Participant(agent_id="carol", group_id="dba", role=pb.SWARM_ROLE_CONSULTANT)

    expected = {
        "08:59": (owner(), pb.TIER_UNSPECIFIED, []),  # not opened yet
        "09:00": (owner("alice", "desk"), pb.TIER_L1, []),
        "09:30": (owner("alice", "desk"), pb.TIER_L1, [carol]),
        "09:39": (owner("alice", "desk"), pb.TIER_L1, [carol]),
        "09:40": (owner("bob", "network"), pb.TIER_L2, [carol]),  # transfer: the new owner holds
        "10:00": (owner("bob", "network"), pb.TIER_L2, []),  # carol left at 10:00
        "10:29": (owner("bob", "network"), pb.TIER_L2, []),
        "10:30": (owner(), pb.TIER_UNSPECIFIED, []),  # resolved: nobody holds it
        "12:00": (owner(), pb.TIER_UNSPECIFIED, []),
    }
    for clock, (holder, tier, participants) in expected.items():
        found = owner_at(desk, "C-AT", at(clock))
        assert (found.owner, found.tier, list(found.participants)) == (
            holder,
            tier,
            participants,
        ), clock


# --- GetOwnershipIntervals ----------------------------------------------------------------------


def play_returning_owner(desk: Desk) -> None:
    """alice → bob → alice in one group, with pauses of every reason along the way."""
    case = desk.case("C-INT")
    case.assign(at("09:00"), "alice", "desk", pb.TIER_L1)
    case.pause(at("09:10"), CUSTOMER)
    case.resume(at("09:25"))
    case.transfer(at("09:30"), "bob", "desk", pb.TIER_L2)
    case.pause(at("09:40"), THIRD_PARTY)
    case.resume(at("10:00"))
    case.pause(at("10:10"), CUSTOMER)
    case.resume(at("10:15"))
    case.transfer(at("10:30"), "alice", "desk")  # tier unspecified: stays L2
    case.pause(at("10:40"), SCHEDULED, until=at("11:00"))
    case.resume(at("11:00"))
    case.resolve(at("11:30"))


def test_a_returning_owner_gets_a_new_interval_with_paused_time_by_reason(desk: Desk) -> None:
    play_returning_owner(desk)

    people = intervals(desk, "C-INT", PERSON)
    assert {i.level for i in people} == {PERSON}
    assert spans(people) == [
        ("alice", at("09:00"), at("09:30")),
        ("bob", at("09:30"), at("10:30")),
        ("alice", at("10:30"), at("11:30")),
    ]
    assert [(i.group_id, i.tier) for i in people] == [
        ("desk", pb.TIER_L1),
        ("desk", pb.TIER_L2),
        ("desk", pb.TIER_L2),
    ]
    assert [i.duration.ToTimedelta() for i in people] == [minutes(30), minutes(60), minutes(60)]
    assert [paused(i.paused) for i in people] == [
        {CUSTOMER: minutes(15)},
        {CUSTOMER: minutes(5), THIRD_PARTY: minutes(20)},
        {SCHEDULED: minutes(20)},
    ]

    (group,) = intervals(desk, "C-INT", GROUP)  # the group never changed hands
    assert (group.level, group.holder, group.tier) == (GROUP, "desk", pb.TIER_L1)
    assert spans([group]) == [("desk", at("09:00"), at("11:30"))]
    assert group.duration.ToTimedelta() == minutes(150)
    assert paused(group.paused) == {
        CUSTOMER: minutes(20),
        THIRD_PARTY: minutes(20),
        SCHEDULED: minutes(20),
    }

    both = intervals(desk, "C-INT")
    assert sorted(spans(both), key=repr) == sorted(spans([*people, group]), key=repr)


def test_a_reopened_case_starts_a_new_tenure_for_its_resolver(desk: Desk) -> None:
    case = desk.case("C-REOPEN")
    case.assign(at("09:00"), "alice", "desk")
    case.transfer(at("10:00"), "bob", "net")
    case.resolve(at("11:00"))
    case.reopen(at("12:00"))
    case.resolve(at("12:45"))

    assert spans(intervals(desk, "C-REOPEN", PERSON)) == [
        ("alice", at("09:00"), at("10:00")),
        ("bob", at("10:00"), at("11:00")),
        ("bob", at("12:00"), at("12:45")),
    ]
    assert spans(intervals(desk, "C-REOPEN", GROUP)) == [
        ("desk", at("09:00"), at("10:00")),
        ("net", at("10:00"), at("11:00")),
        ("net", at("12:00"), at("12:45")),
    ]
    assert owner_at(desk, "C-REOPEN", at("11:30")).owner == owner()  # resolved meanwhile
    assert owner_at(desk, "C-REOPEN", at("12:00")).owner == owner("bob", "net")
    (bob,) = durations(desk, q.DURATION_SCOPE_PERSON, "bob")
    assert (bob.owned.ToTimedelta(), bob.working.ToTimedelta(), bob.tenures) == (
        minutes(105),
        minutes(105),
        2,
    )


# --- GetDurations -------------------------------------------------------------------------------


def test_durations_total_owned_paused_and_working_time_per_person_group_and_case(
    desk: Desk,
) -> None:
    play_returning_owner(desk)  # alice 30+60 min, bob 60 min, all in group desk
    other = desk.case("C-DUR")
    other.assign(at("12:00"), "bob", "desk")
    other.pause(at("12:30"), CUSTOMER)
    other.resume(at("12:40"))
    other.resolve(at("13:00"))

    bob = ("bob", minutes(120), {CUSTOMER: minutes(15), THIRD_PARTY: minutes(20)}, minutes(85), 2)
    alice = ("alice", minutes(90), {CUSTOMER: minutes(15), SCHEDULED: minutes(20)}, minutes(55), 2)
    assert [total(t) for t in durations(desk, q.DURATION_SCOPE_PERSON)] == [bob, alice]
    assert [total(t) for t in durations(desk, q.DURATION_SCOPE_PERSON, "alice")] == [alice]
    assert [total(t) for t in durations(desk, q.DURATION_SCOPE_PERSON, limit=1)] == [bob]

    all_pauses = {CUSTOMER: minutes(30), THIRD_PARTY: minutes(20), SCHEDULED: minutes(20)}
    assert [total(t) for t in durations(desk, q.DURATION_SCOPE_GROUP)] == [
        ("desk", minutes(210), all_pauses, minutes(140), 2)
    ]

    int_pauses = {CUSTOMER: minutes(20), THIRD_PARTY: minutes(20), SCHEDULED: minutes(20)}
    assert [total(t) for t in durations(desk, q.DURATION_SCOPE_CASE, "C-INT")] == [
        ("C-INT", minutes(150), int_pauses, minutes(90), 3)
    ]
    assert [total(t) for t in durations(desk, q.DURATION_SCOPE_CASE, "C-INT", level=GROUP)] == [
        ("C-INT", minutes(150), int_pauses, minutes(90), 1)
    ]
    assert [(t.key, t.owned.ToTimedelta()) for t in durations(desk, q.DURATION_SCOPE_CASE)] == [
        ("C-INT", minutes(150)),
        ("C-DUR", minutes(60)),
    ]


def test_durations_need_a_scope(desk: Desk) -> None:
    desk.case("C-1").assign(at("09:00"), "alice", "desk")
    request = q.GetDurationsRequest(min_position=desk.position)
    assert_invalid(refusal(desk.query.GetDurations, request), "scope")


# --- GetHandoffStats ----------------------------------------------------------------------------


def test_handoff_stats_count_changes_stations_returns_and_pingpong(desk: Desk) -> None:
    case = desk.case("C-HO")
    case.assign(at("09:00"), "alice", "desk", pb.TIER_L1)
    case.transfer(at("09:10"), "bob", "desk", pb.TIER_L3, warm=True)
    case.transfer(at("09:20"), "alice", "desk")  # cold, stays L3
    case.transfer(at("09:30"), "bob", "desk", warm=True)

    stats = desk.query.GetHandoffStats(
        q.GetHandoffStatsRequest(case_id="C-HO", min_position=desk.position)
    )
    assert stats.case_id == "C-HO"
    assert stats.person == q.LevelHandoffs(
        changes=3, stations=4, unique_owners=2, returns=2, pingpong_returns=2, longest_pingpong=4
    )
    assert stats.group == q.LevelHandoffs(changes=0, stations=1, unique_owners=1)
    assert (stats.warm, stats.cold) == (2, 1)
    assert stats.warm_share == pytest.approx(2 / 3)
    assert stats.tiers_crossed == 2


def test_handoff_stats_per_group_skip_queue_owners_at_person_level(desk: Desk) -> None:
    case = desk.case("C-HO-G")
    case.assign(at("09:00"), "alice", "desk", pb.TIER_L2)
    case.transfer(at("09:10"), "alice", "network", pb.TIER_L1)  # same person, other group
    case.transfer(at("09:20"), group="desk")  # back to the desk's queue, no person

    stats = desk.query.GetHandoffStats(
        q.GetHandoffStatsRequest(case_id="C-HO-G", min_position=desk.position)
    )
    assert stats.person == q.LevelHandoffs(changes=0, stations=1, unique_owners=1)
    assert stats.group == q.LevelHandoffs(
        changes=2, stations=3, unique_owners=2, returns=1, pingpong_returns=1, longest_pingpong=3
    )
    assert (stats.warm, stats.cold, stats.warm_share) == (0, 2, 0.0)
    assert stats.tiers_crossed == 1

    quiet = desk.case("C-QUIET")
    quiet.assign(at("09:00"), "erin", "desk")
    stats = desk.query.GetHandoffStats(
        q.GetHandoffStatsRequest(case_id="C-QUIET", min_position=desk.position)
    )
    assert (stats.warm, stats.cold, stats.warm_share, stats.tiers_crossed) == (0, 0, 0.0, 0)
    assert stats.person == q.LevelHandoffs(changes=0, stations=1, unique_owners=1)


# --- GetHandoverNetwork -------------------------------------------------------------------------


def test_handover_network_sums_edges_across_cases_most_frequent_first(desk: Desk) -> None:
    first = desk.case("N-1")
    first.assign(at("09:00"), "alice", "desk")
    first.transfer(at("09:10"), "bob", "net")
    first.transfer(at("09:20"), "alice", "desk")
    first.transfer(at("09:30"), "bob", "net")
    second = desk.case("N-2")
    second.assign(at("09:00"), "carol", "desk")
    second.transfer(at("09:10"), "bob", "net")
    second.transfer(at("09:20"), "alice", "desk")

    def network(level: int, top_n: int = 0) -> list[tuple[str, str, int]]:
        request = q.GetHandoverNetworkRequest(level=level, top_n=top_n, min_position=desk.position)
        edges = desk.query.GetHandoverNetwork(request).edges
        return [(e.from_holder, e.to_holder, e.count) for e in edges]

    assert network(PERSON) == [("alice", "bob", 2), ("bob", "alice", 2), ("carol", "bob", 1)]
    assert network(PERSON, top_n=2) == [("alice", "bob", 2), ("bob", "alice", 2)]
    assert network(GROUP) == [("desk", "net", 3), ("net", "desk", 2)]
    assert network(GROUP, top_n=1) == [("desk", "net", 3)]

    request = q.GetHandoverNetworkRequest(min_position=desk.position)
    assert_invalid(refusal(desk.query.GetHandoverNetwork, request), "level")


# --- GetCredit ----------------------------------------------------------------------------------


def test_credit_goes_to_the_resolver_and_a_reopening_reverses_it_until_the_next_resolve(
    desk: Desk,
) -> None:
    case = desk.case("CR-1")
    case.assign(at("09:00"), "alice", "desk")
    case.transfer(at("10:00"), "bob", "net")
    case.resolve(at("11:00"))

    report = credit(desk, case_id="CR-1")
    assert report.policy == "ResolverTakesAll@1"
    assert lines(report) == [("CR-1", "bob", "net", 1.0, "credit", 1, at("11:00"))]
    assert (report.total_credit, report.total_assists) == (1.0, 0.0)

    case.reopen(at("12:00"))
    report = credit(desk, case_id="CR-1")
    assert lines(report) == [
        ("CR-1", "bob", "net", 1.0, "credit", 1, at("11:00")),
        ("CR-1", "bob", "net", -1.0, "reversal", 1, at("12:00")),
    ]
    assert report.total_credit == 0.0

    case.resolve(at("13:00"))
    for report in (
        credit(desk, case_id="CR-1"),
        credit(desk, "ResolverTakesAll@1", agent_id="bob"),
        credit(desk, "ResolverTakesAll", group_id="net"),
    ):
        assert report.policy == "ResolverTakesAll@1"
        assert lines(report) == [
            ("CR-1", "bob", "net", 1.0, "credit", 1, at("11:00")),
            ("CR-1", "bob", "net", -1.0, "reversal", 1, at("12:00")),
            ("CR-1", "bob", "net", 1.0, "credit", 2, at("13:00")),
        ]
        assert report.total_credit == 1.0
    nothing = credit(desk, agent_id="alice")
    assert (lines(nothing), nothing.total_credit) == ([], 0.0)


def test_time_weighted_credit_follows_working_involvement(desk: Desk) -> None:
    case = desk.case("CR-2")
    case.assign(at("09:00"), "alice", "desk")  # owns 09:00-10:00: 60 min
    case.transfer(at("10:00"), "bob", "net")  # owns 10:00-11:00 less the 15 min pause: 45 min
    case.pause(at("10:15"), CUSTOMER)
    case.join(at("10:20"), "carol", "dba", pb.SWARM_ROLE_CONTRIBUTOR)  # 40 min less 10 paused
    case.resume(at("10:30"))
    case.join(at("10:40"), "dave", "sec", pb.SWARM_ROLE_OBSERVER)  # observers earn nothing
    case.resolve(at("11:00"))

    for policy in ("TimeWeighted@1", "TimeWeighted"):
        report = credit(desk, policy, case_id="CR-2")
        assert report.policy == "TimeWeighted@1"
        assert [(x.agent_id, x.group_id, x.kind) for x in report.lines] == [
            ("alice", "desk", "credit"),
            ("bob", "net", "credit"),
            ("carol", "dba", "credit"),
        ]
        assert [x.amount for x in report.lines] == pytest.approx([60 / 135, 45 / 135, 30 / 135])
        assert {when(x.at) for x in report.lines} == {at("11:00")}
        assert report.total_credit == pytest.approx(1.0)

    overlay = credit(desk, "OverlayAssists@1", case_id="CR-2")
    assert [(x.agent_id, x.kind, x.amount) for x in overlay.lines] == [
        ("alice", "assist", 1.0),
        ("carol", "assist", 1.0),
        ("bob", "credit", 1.0),
    ]
    assert (overlay.total_credit, overlay.total_assists) == (1.0, 2.0)


def test_an_unknown_credit_policy_is_refused_with_the_known_policies_listed(desk: Desk) -> None:
    desk.case("CR-3").assign(at("09:00"), "alice", "desk")
    for policy in ("NoSuchPolicy", "ResolverTakesAll@7", "TimeWeighted@one"):
        request = q.GetCreditRequest(case_id="CR-3", policy=policy, min_position=desk.position)
        error = refusal(desk.query.GetCredit, request)
        assert_invalid(error, "policy")
        message = error.details() or ""
        assert policy in message
        for known in KNOWN_POLICIES:
            assert known in message, f"{known} missing from {message!r}"


def test_credit_needs_exactly_one_of_case_agent_and_group(desk: Desk) -> None:
    desk.case("CR-4").assign(at("09:00"), "alice", "desk")
    for who in ({}, {"case_id": "CR-4", "agent_id": "alice"}, {"agent_id": "a", "group_id": "g"}):
        request = q.GetCreditRequest(min_position=desk.position, **who)
        error = refusal(desk.query.GetCredit, request)
        assert_invalid(error, "case_id or agent_id or group_id")


# --- ListOverstays ------------------------------------------------------------------------------


@pytest.fixture
def overstay_desk(database_url: str) -> Iterator[Desk]:
    running = start_ledger(database_url, overstay_targets={"default": 3600.0, "group:fast": 60.0})
    try:
        with channel(f"127.0.0.1:{running.server.port}") as chan:
            yield Desk(ledger_pb2_grpc.LedgerServiceStub(chan), QueryStub(chan))
    finally:
        running.stop(grace=1)


def test_overstays_list_open_cases_whose_current_tenure_exceeds_its_target(
    overstay_desk: Desk,
) -> None:
    desk = overstay_desk
    now = datetime.now(UTC).replace(microsecond=0)
    desk.case("O-LONG").assign(now - timedelta(hours=3), "alice", "slow")  # 3 h > 1 h default
    desk.case("O-SHORT").assign(now - minutes(10), "bob", "slow")  # 10 min < 1 h
    desk.case("O-FAST").assign(now - minutes(5), "carol", "fast")  # 5 min > 60 s for group fast
    desk.case("O-FRESH").assign(now - timedelta(seconds=10), "hal", "fast")  # 10 s < 60 s
    done = desk.case("O-DONE")
    done.assign(now - timedelta(hours=5), "dave", "slow")
    done.resolve(now - timedelta(hours=4))  # resolved: never an overstay
    handed = desk.case("O-HANDED")
    handed.assign(now - timedelta(hours=6), "erin", "slow")
    handed.transfer(now - minutes(20), "frank", "slow")  # the current tenure is 20 min old

    def overstays(**fields: Any) -> list[tuple[str, timedelta]]:
        request = q.ListOverstaysRequest(min_position=desk.position, **fields)
        found = desk.query.ListOverstays(request).overstays
        return [(o.case.case_id, o.target.ToTimedelta()) for o in found]

    assert overstays() == [("O-LONG", timedelta(hours=1)), ("O-FAST", timedelta(seconds=60))]
    assert overstays(group_id="fast") == [("O-FAST", timedelta(seconds=60))]
    assert overstays(group_id="slow") == [("O-LONG", timedelta(hours=1))]
    assert overstays(limit=1) == [("O-LONG", timedelta(hours=1))]

    (long,) = desk.query.ListOverstays(
        q.ListOverstaysRequest(group_id="slow", min_position=desk.position)
    ).overstays
    assert long.case.owner == owner("alice", "slow")
    assert when(long.case.owned_since) == now - timedelta(hours=3)
    assert long.case.held_for.ToTimedelta() >= timedelta(hours=3)


# --- read-your-writes and the projection's position ---------------------------------------------


def test_every_query_sees_the_write_whose_position_it_passes(desk: Desk) -> None:
    case = desk.case("C-RYW")
    case.assign(at("08:00"), "agent0", "desk")
    for n in range(1, 16):
        agent = f"agent{n}"
        result = case.transfer(at("08:00") + minutes(n), agent, "desk")
        now = desk.query.GetCurrentOwner(
            q.GetCurrentOwnerRequest(case_id="C-RYW", min_position=result.position)
        ).case
        assert (now.owner.agent_id, now.version, now.last_position) == (
            agent,
            result.version,
            result.position,
        )
        found = desk.query.GetOwnershipIntervals(
            q.GetOwnershipIntervalsRequest(
                case_id="C-RYW", level=PERSON, min_position=result.position
            )
        ).intervals
        assert len(found) == n + 1 and found[-1].holder == agent
        listed = desk.query.ListCasesByOwner(
            q.ListCasesByOwnerRequest(agent_id=agent, min_position=result.position)
        ).cases
        assert [c.case_id for c in listed] == ["C-RYW"]
        stats = desk.query.GetHandoffStats(
            q.GetHandoffStatsRequest(case_id="C-RYW", min_position=result.position)
        )
        assert stats.person.changes == n


def _projection_behind(desk: Desk, timeout: float) -> tuple[grpc.RpcError, float]:
    request = q.GetCurrentOwnerRequest(case_id="C-BEHIND", min_position=desk.position + 1_000_000)
    started = time.monotonic()
    error = refusal(desk.query.GetCurrentOwner, request, timeout=timeout)
    return error, time.monotonic() - started


def test_a_position_beyond_the_head_fails_with_deadline_exceeded_and_the_projector_position(
    desk: Desk,
) -> None:
    last = desk.case("C-BEHIND").assign(at("09:00"), "alice", "desk")
    assert current(desk, "C-BEHIND").last_position == last.position  # the projector is at head
    wanted = last.position + 1_000_000

    # The server waits almost the whole deadline, then answers a little before it, so that its
    # details (not the client's own bare timeout) reach the caller.
    error, elapsed = _projection_behind(desk, 0.5)
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED, error.details()
    assert 0.3 <= elapsed < 0.5
    (info,) = details(error, error_details_pb2.ErrorInfo)
    assert info.reason == "PROJECTION_BEHIND"
    assert info.domain == "ownership.v1"
    assert info.metadata["position"] == str(last.position)
    assert info.metadata["min_position"] == str(wanted)
    # The service is none the worse for it.
    assert current(desk, "C-BEHIND").owner == owner("alice", "desk")


def test_every_caller_whose_deadline_passes_gets_the_projection_behind_details(
    desk: Desk,
) -> None:
    desk.case("C-BEHIND").assign(at("09:00"), "alice", "desk")
    for _ in range(10):
        error, _elapsed = _projection_behind(desk, 0.2)
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert rpc_status.from_call(error) is not None, "the ErrorInfo did not reach the caller"


def test_an_unknown_case_is_not_found_by_every_case_query(desk: Desk) -> None:
    desk.case("C-KNOWN").assign(at("09:00"), "alice", "desk")
    p = desk.position
    calls: list[tuple[Callable[..., Any], Message]] = [
        (desk.query.GetCurrentOwner, q.GetCurrentOwnerRequest(case_id="C-NOPE", min_position=p)),
        (
            desk.query.GetOwnerAt,
            q.GetOwnerAtRequest(case_id="C-NOPE", at=ts(at("09:00")), min_position=p),
        ),
        (
            desk.query.GetOwnershipIntervals,
            q.GetOwnershipIntervalsRequest(case_id="C-NOPE", min_position=p),
        ),
        (
            desk.query.GetDurations,
            q.GetDurationsRequest(scope=q.DURATION_SCOPE_CASE, key="C-NOPE", min_position=p),
        ),
        (desk.query.GetHandoffStats, q.GetHandoffStatsRequest(case_id="C-NOPE", min_position=p)),
        (desk.query.GetCredit, q.GetCreditRequest(case_id="C-NOPE", min_position=p)),
    ]
    for call, request in calls:
        error = refusal(call, request)
        assert error.code() == grpc.StatusCode.NOT_FOUND, (type(request).__name__, error.details())
        (resource,) = details(error, error_details_pb2.ResourceInfo)
        assert resource.resource_name == "C-NOPE"


# --- event time: late events and clock skew -----------------------------------------------------


def test_a_late_transfer_is_placed_in_event_time_order(desk: Desk) -> None:
    case = desk.case("C-LATE")
    case.assign(at("09:00"), "alice", "desk")
    case.transfer(at("12:00"), "bob", "desk")
    assert spans(intervals(desk, "C-LATE", PERSON)) == [
        ("alice", at("09:00"), at("12:00")),
        ("bob", at("12:00"), None),
    ]

    case.transfer(at("11:00"), "carol", "desk")  # recorded last, happened before bob's
    assert spans(intervals(desk, "C-LATE", PERSON)) == [
        ("alice", at("09:00"), at("11:00")),
        ("carol", at("11:00"), at("12:00")),
        ("bob", at("12:00"), None),
    ]
    assert spans(intervals(desk, "C-LATE", GROUP)) == [("desk", at("09:00"), None)]
    assert owner_at(desk, "C-LATE", at("10:59")).owner.agent_id == "alice"
    assert owner_at(desk, "C-LATE", at("11:30")).owner.agent_id == "carol"
    assert owner_at(desk, "C-LATE", at("12:00")).owner.agent_id == "bob"
    closed = [t for t in durations(desk, q.DURATION_SCOPE_PERSON) if t.key != "bob"]
    assert [(t.key, t.owned.ToTimedelta()) for t in closed] == [
        ("alice", minutes(120)),
        ("carol", minutes(60)),
    ]


def test_a_resume_stamped_before_its_pause_counts_no_paused_time(desk: Desk) -> None:
    case = desk.case("C-SKEW")
    case.assign(at("09:00"), "alice", "desk")
    case.pause(at("10:00"), CUSTOMER)
    case.resume(at("09:55"))  # the resuming clock runs five minutes behind
    case.pause(at("10:10"), THIRD_PARTY)
    case.resume(at("10:20"))
    case.resolve(at("11:00"))

    (interval,) = intervals(desk, "C-SKEW", PERSON)
    assert spans([interval]) == [("alice", at("09:00"), at("11:00"))]
    assert interval.duration.ToTimedelta() == minutes(120)
    assert paused(interval.paused) == {THIRD_PARTY: minutes(10)}  # customer: zero, not -5 min
    assert [total(t) for t in durations(desk, q.DURATION_SCOPE_CASE, "C-SKEW")] == [
        ("C-SKEW", minutes(120), {THIRD_PARTY: minutes(10)}, minutes(110), 1)
    ]
    assert [total(t) for t in durations(desk, q.DURATION_SCOPE_PERSON, "alice")] == [
        ("alice", minutes(120), {THIRD_PARTY: minutes(10)}, minutes(110), 1)
    ]


# --- regressions: each of these once failed ------------------------------------------------------


def test_a_case_handed_to_a_group_queue_is_owned_since_the_handover(desk: Desk) -> None:
    case = desk.case("C-QUEUE")
    case.assign(at("09:00"), "alice", "desk")
    case.transfer(at("10:00"), group="network")  # to the network queue, no person

    before = datetime.now(UTC)
    now = current(desk, "C-QUEUE")
    assert now.owner == owner(group_id="network")
    assert when(now.owned_since) == at("10:00")
    assert now.held_for.ToTimedelta() <= datetime.now(UTC) - at("10:00")
    assert now.held_for.ToTimedelta() >= before - at("10:00")


def test_a_query_without_a_deadline_waits_for_its_position(desk: Desk) -> None:
    case = desk.case("C-WAIT")
    first = case.assign(at("09:00"), "alice", "desk")
    assert current(desk, "C-WAIT").version == 1  # the projector is at the head

    def transfer_soon() -> None:
        time.sleep(0.5)
        case.transfer(at("10:00"), "bob", "desk")

    writer = threading.Thread(target=transfer_soon)
    writer.start()
    try:
        request = q.GetCurrentOwnerRequest(case_id="C-WAIT", min_position=first.position + 1)
        answer = desk.raw_query.GetCurrentOwner(request)  # no deadline: the default wait applies
    finally:
        writer.join()
    assert (answer.case.owner.agent_id, answer.case.version) == ("bob", 2)


def _paused_again(desk: Desk) -> tuple[datetime, datetime]:
    """An open case paused twice for the customer: 10 min, then since an hour ago (still)."""
    now = datetime.now(UTC).replace(microsecond=0)
    case = desk.case("C-OPEN-PAUSE")
    case.assign(now - minutes(120), "alice", "desk")
    case.pause(now - minutes(100), CUSTOMER)
    case.resume(now - minutes(90))
    case.pause(now - minutes(60), CUSTOMER)
    return now - minutes(120), now - minutes(60)


def test_an_open_pause_adds_to_earlier_pauses_of_the_same_reason(desk: Desk) -> None:
    opened, pause_started = _paused_again(desk)
    before = datetime.now(UTC)
    (interval,) = intervals(desk, "C-OPEN-PAUSE", PERSON)
    after = datetime.now(UTC)
    customer = paused(interval.paused)[CUSTOMER]
    assert (
        minutes(10) + (before - pause_started) <= customer <= minutes(10) + (after - pause_started)
    )
    assert when(interval.start) == opened


def test_durations_of_a_paused_case_keep_counting_the_pause(desk: Desk) -> None:
    opened, pause_started = _paused_again(desk)
    before = datetime.now(UTC)
    (found,) = durations(desk, q.DURATION_SCOPE_CASE, "C-OPEN-PAUSE")
    after = datetime.now(UTC)
    customer = paused(found.paused)[CUSTOMER]
    assert (
        minutes(10) + (before - pause_started) <= customer <= minutes(10) + (after - pause_started)
    )
    # Working time stopped when the pause began: 50 min by then, whatever the time now.
    working = found.working.ToTimedelta()
    assert abs(working - (pause_started - opened - minutes(10))) < timedelta(seconds=1)

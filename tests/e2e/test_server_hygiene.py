"""Server hygiene: health and reflection, a graceful stop on SIGTERM, and deadlines.

The SIGTERM test runs the real `ledger serve` console script as a child process under load and then
opens its store directly, to check that the stop lost nothing acknowledged and half-wrote nothing.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from ownership.v1 import ledger_pb2 as pb
from ownership.v1 import ledger_pb2_grpc
from services.bootstrap import Ledger
from services.ledger.api.server import channel
from services.ledger.infrastructure.store import EventsourcingStore
from tests.e2e.conftest import start_ledger
from tests.e2e.processes import running_ledger
from tests.e2e.wire import ALICE

SERVICE = "ownership.v1.LedgerService"
CALL_TIMEOUT = 10.0

# --- health and reflection ----------------------------------------------------------------------


def test_health_reports_serving_for_the_server_and_the_ledger_service(
    grpc_channel: grpc.Channel,
) -> None:
    health = health_pb2_grpc.HealthStub(grpc_channel)
    for service in ("", SERVICE):
        answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING, service
    with pytest.raises(grpc.RpcError) as unknown:
        health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_and_describes_the_ledger_service(grpc_channel: grpc.Channel) -> None:
    reflection = reflection_pb2_grpc.ServerReflectionStub(grpc_channel)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE),
    ]
    listed, described = list(reflection.ServerReflectionInfo(iter(requests), timeout=5))

    names = {s.name for s in listed.list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health"} <= names

    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in described.file_descriptor_response.file_descriptor_proto
    ]
    services = {f"{f.package}.{s.name}": s for f in files for s in f.service}
    methods = {m.name: m for m in services[SERVICE].method}
    assert {"Assign", "Transfer", "ExecuteBatch", "ReadAll", "Subscribe"} <= set(methods)
    assert methods["Subscribe"].server_streaming and not methods["Assign"].server_streaming


def test_health_watchers_hear_not_serving_when_the_server_stops(sqlite_url: str) -> None:
    ledger: Ledger = start_ledger(sqlite_url)
    stopper = threading.Thread(target=ledger.stop, kwargs={"grace": 2}, daemon=True)
    try:
        with channel(f"127.0.0.1:{ledger.server.port}") as chan:
            watch = health_pb2_grpc.HealthStub(chan).Watch(
                health_pb2.HealthCheckRequest(service=SERVICE), timeout=10
            )
            statuses = [next(watch).status]
            stopper.start()
            ended = grpc.StatusCode.OK
            try:
                statuses.extend(answer.status for answer in watch)
            except grpc.RpcError as error:  # the stream may be cut once the server is gone
                ended = error.code()
    finally:
        if stopper.ident is None:
            ledger.stop(grace=0)
        else:
            stopper.join(10)
    assert not stopper.is_alive(), "the server did not stop"
    assert ended in {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}
    assert statuses[0] == health_pb2.HealthCheckResponse.SERVING
    assert health_pb2.HealthCheckResponse.NOT_SERVING in statuses[1:], statuses


# --- graceful stop on SIGTERM -------------------------------------------------------------------

GRACE_SECONDS = 5.0
SHUTDOWN_CODES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}


@dataclass
class Call:
    """One RPC: the commands it carried, each with the events it must record, and how it ended."""

    commands: list[tuple[str, str, int]]  # (command_id, case_id, events it records)
    answers: list[pb.AppendResult] = field(default_factory=list)
    code: grpc.StatusCode | None = None


@dataclass
class ClientLog:
    calls: list[Call] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def acknowledged(self) -> int:
        return sum(1 for call in self.calls if call.answers)


def _steps(worker: int, round_no: int) -> list[tuple[str, object, list[tuple[str, str, int]]]]:
    """The RPCs of one round on a case only this worker touches, with the events each records.

    Even rounds are single calls; odd rounds send the same story as one ExecuteBatch. Transferring
    to a swarm member records two events (SwarmLeft, then Transferred).
    """
    case = f"SIG-{worker}-{round_no}"
    expert = pb.Owner(agent_id="carol", group_id="platform-l3")
    ids = [f"{case}/{n}" for n in range(4)]
    assign = pb.AssignRequest(case_id=case, command_id=ids[0], actor="d", owner=ALICE)
    join = pb.JoinSwarmRequest(
        case_id=case, command_id=ids[1], actor="a", agent_id="carol", role=pb.SWARM_ROLE_CONSULTANT
    )
    to_expert = pb.TransferRequest(
        case_id=case, command_id=ids[2], actor="a", to_owner=expert, reason=pb.TRANSFER_REASON_OTHER
    )
    back = pb.TransferRequest(
        case_id=case, command_id=ids[3], actor="c", to_owner=ALICE, reason=pb.TRANSFER_REASON_OTHER
    )
    events = [1, 1, 2, 1]
    if round_no % 2 == 0:
        return [
            (method, request, [(ids[n], case, events[n])])
            for n, (method, request) in enumerate(
                [
                    ("Assign", assign),
                    ("JoinSwarm", join),
                    ("Transfer", to_expert),
                    ("Transfer", back),
                ]
            )
        ]
    batch = pb.ExecuteBatchRequest(
        commands=[
            pb.BatchCommand(assign=assign),
            pb.BatchCommand(join_swarm=join),
            pb.BatchCommand(transfer=to_expert),
            pb.BatchCommand(transfer=back),
        ]
    )
    return [("ExecuteBatch", batch, [(ids[n], case, events[n]) for n in range(4)])]


def _client(
    stub: ledger_pb2_grpc.LedgerServiceStub, worker: int, log: ClientLog, give_up: float
) -> None:
    """Send commands back to back until the server goes away (or ``give_up``, a monotonic time)."""
    for round_no in range(10_000):
        for method, request, commands in _steps(worker, round_no):
            if time.monotonic() > give_up:
                log.unexpected.append(f"worker {worker} was still running at the time limit")
                return
            call = Call(commands)
            log.calls.append(call)
            try:
                response = getattr(stub, method)(request, timeout=CALL_TIMEOUT)
            except grpc.RpcError as error:
                call.code = error.code()
                if call.code not in SHUTDOWN_CODES:
                    log.unexpected.append(f"{commands}: {call.code.name} {error.details()}")
                return  # the case's state is unknown from here on: stop this worker
            if method == "ExecuteBatch":
                failed = [r.error for r in response.results if r.HasField("error")]
                if failed:
                    log.unexpected.append(f"{commands}: refused in batch: {failed}")
                    return
                call.answers = [r.result for r in response.results]
            else:
                call.answers = [response.result]
            for (command_id, _, events), answer in zip(commands, call.answers, strict=True):
                if answer.command_id != command_id or answer.events_recorded != events:
                    log.unexpected.append(f"{command_id}: odd answer {answer}")


def _stored_events(database_url: str) -> list[tuple[int, str, int, str]]:
    """(position, case_id, version, command_id) of every stored event, read from the store."""
    store = EventsourcingStore(database_url, pool_size=2)
    try:
        events = []
        for _ in range(1000):
            page = store.read_all(events[-1][0] if events else 0, 1000)
            if not page:
                return events
            events.extend(
                (e.position, e.event.originator_id, e.event.originator_version, e.event.command_id)
                for e in page
            )
        raise AssertionError("the store never ran out of events")
    finally:
        store.close()


def test_sigterm_stops_gracefully_keeping_every_acknowledged_command_whole(
    database_url: str, tmp_path: Path
) -> None:
    workers = 4
    logs = [ClientLog() for _ in range(workers)]
    stream_end: dict[str, object] = {}
    env = {"LEDGER_GRACE_SECONDS": str(GRACE_SECONDS)}
    with running_ledger(database_url, tmp_path / "ledger.log", env=env) as ledger:
        with channel(ledger.target) as chan:
            stub = ledger_pb2_grpc.LedgerServiceStub(chan)
            give_up = time.monotonic() + 30
            clients = [
                threading.Thread(target=_client, args=(stub, w, logs[w], give_up), daemon=True)
                for w in range(workers)
            ]
            for client in clients:
                client.start()

            stream = stub.Subscribe(pb.SubscribeRequest(after_position=0), timeout=30)
            first = next(stream)  # the subscription is live before the stop
            assert first.events

            def drain() -> None:
                try:
                    for _ in stream:
                        pass
                    stream_end["code"] = grpc.StatusCode.OK
                except grpc.RpcError as error:
                    stream_end["code"] = error.code()
                stream_end["at"] = time.monotonic()

            reader = threading.Thread(target=drain, daemon=True)
            reader.start()

            deadline = time.monotonic() + 10
            while sum(log.acknowledged() for log in logs) < 60 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert all(t.is_alive() for t in clients), [log.unexpected for log in logs]

            ledger.sigterm()
            signalled = time.monotonic()
            status = ledger.wait(GRACE_SECONDS + 5)
            stopped_after = time.monotonic() - signalled

            for client in clients:
                client.join(timeout=15)
            reader.join(timeout=10)
            assert not any(t.is_alive() for t in clients), "a client hung after the stop"
            assert not reader.is_alive(), "the Subscribe stream hung after the stop"
        server_log = ledger.log()

    assert status == 0, f"exit status {status} after {stopped_after:.1f}s:\n{server_log}"
    assert stopped_after < GRACE_SECONDS + 1, f"took {stopped_after:.1f}s to stop:\n{server_log}"
    assert stream_end.get("code") == grpc.StatusCode.OK, stream_end
    assert [u for log in logs for u in log.unexpected] == []

    calls = [call for log in logs for call in log.calls]
    acknowledged = [call for call in calls if call.answers]
    interrupted = [call for call in calls if call.code in SHUTDOWN_CODES]
    assert len(acknowledged) >= 60
    assert len(interrupted) == workers, "every worker ends on a call the stop refused"

    stored = _stored_events(database_url)
    by_position = {position: rest for position, *rest in stored}
    written = Counter(command_id for *_, command_id in stored)

    for call in acknowledged:
        for (command_id, case_id, events), answer in zip(call.commands, call.answers, strict=True):
            assert by_position.get(answer.position) == [case_id, answer.version, command_id], (
                f"acknowledged {command_id} at {answer.position} is not stored as answered"
            )
            assert written[command_id] == events, command_id
    for call in interrupted:
        counts = [written[command_id] for command_id, _, _ in call.commands]
        full = [events for _, _, events in call.commands]
        assert counts in ([0] * len(full), full), f"half-written call {call.commands}: {counts}"

    known = {
        command_id for call in acknowledged + interrupted for command_id, _, _ in call.commands
    }
    assert set(written) <= known, set(written) - known

    versions: dict[str, list[int]] = defaultdict(list)
    for _, case_id, version, _ in stored:
        versions[case_id].append(version)
    for case_id, case_versions in versions.items():
        assert case_versions == list(range(1, len(case_versions) + 1)), (case_id, case_versions)


# --- deadlines ----------------------------------------------------------------------------------


def _case_events(stub: ledger_pb2_grpc.LedgerServiceStub, case_id: str) -> list[pb.Event]:
    try:
        return list(stub.ReadCase(pb.ReadCaseRequest(case_id=case_id), timeout=5).events)
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return []


def test_a_call_past_its_deadline_is_either_not_stored_or_replayed_on_retry(
    stub: ledger_pb2_grpc.LedgerServiceStub,
) -> None:
    """A deadline that passes before the write stores nothing; one that races the write may lose.

    gRPC sends deadlines rounded up to the millisecond and a response can beat the client's own
    timer, so even a 1 microsecond deadline sometimes reaches the handler in time, or answers OK.
    What must never happen is a stored command that a retry with its command_id does not replay.
    """
    tiny = 8
    timeouts = [1e-6] * tiny + [1e-4, 1e-3, 3e-3, 1e-2, 3e-2] * 2
    outcomes: list[grpc.StatusCode] = []
    requests = []
    for n, timeout in enumerate(timeouts):
        request = pb.AssignRequest(
            case_id=f"DL-{n}", command_id=f"dl-{n}", actor="d", owner=ALICE, tier=pb.TIER_L1
        )
        requests.append(request)
        try:
            stub.Assign(request, timeout=timeout)
            outcomes.append(grpc.StatusCode.OK)
        except grpc.RpcError as error:
            outcomes.append(error.code())
    assert grpc.StatusCode.DEADLINE_EXCEEDED in outcomes[:tiny], outcomes
    assert set(outcomes) <= {grpc.StatusCode.OK, grpc.StatusCode.DEADLINE_EXCEEDED}

    time.sleep(0.5)  # let any call the server still works on finish
    for request, outcome in zip(requests, outcomes, strict=True):
        before = _case_events(stub, request.case_id)
        retry = stub.Assign(request, timeout=CALL_TIMEOUT).result
        after = _case_events(stub, request.case_id)
        assert len(after) == 1 and after[0].command_id == request.command_id, after
        assert (retry.version, retry.position) == (1, after[0].position)
        if before:
            assert retry.replayed and before[0].position == after[0].position, (outcome, retry)
        else:
            assert outcome != grpc.StatusCode.OK, "an acknowledged command was not stored"
            assert not retry.replayed and retry.events_recorded == 1, retry


def test_a_batch_past_its_deadline_is_written_whole_or_not_at_all(
    stub: ledger_pb2_grpc.LedgerServiceStub,
) -> None:
    size = 300
    batch = pb.ExecuteBatchRequest(
        commands=[
            pb.BatchCommand(
                assign=pb.AssignRequest(
                    case_id=f"DLB-{n}", command_id=f"dlb-{n}", actor="d", owner=ALICE
                )
            )
            for n in range(size)
        ]
    )
    with pytest.raises(grpc.RpcError) as late:
        stub.ExecuteBatch(batch, timeout=0.02)
    assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

    time.sleep(1.0)
    stored = stub.ReadAll(pb.ReadAllRequest(), timeout=CALL_TIMEOUT).events
    assert len(stored) in (0, size), f"{len(stored)} of {size} commands of one batch were stored"

    retry = stub.ExecuteBatch(batch, timeout=CALL_TIMEOUT).results
    assert all(r.HasField("result") for r in retry)
    replayed = {r.result.replayed for r in retry}
    assert len(replayed) == 1, "the batch's commands disagree on whether they were stored"
    if stored:
        assert replayed == {True}, "a stored command was not recognised on retry"
    else:
        assert all(r.result.replayed or r.result.events_recorded == 1 for r in retry)
    final = stub.ReadAll(pb.ReadAllRequest(), timeout=CALL_TIMEOUT).events
    assert Counter(e.command_id for e in final) == {f"dlb-{n}": 1 for n in range(size)}

"""AuditService and corrections over the real gRPC server, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.rpc import error_details_pb2

from ownership.v1 import audit_pb2 as apb
from ownership.v1 import audit_pb2_grpc, ledger_pb2_grpc, query_pb2_grpc
from ownership.v1 import ledger_pb2 as pb
from ownership.v1 import query_pb2 as q
from services.audit.chain import export_line, record_from_line
from services.audit.service import verify_lines
from services.bootstrap import Ledger, build_auditor
from services.ledger.domain.chain import GENESIS
from tests.e2e.wire import BOB, assign, details, error_info, refusal, request, transfer, ts

NINE = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def audit(grpc_channel: grpc.Channel) -> audit_pb2_grpc.AuditServiceStub:
    return audit_pb2_grpc.AuditServiceStub(grpc_channel)


def correction(
    case_id: str, command_id: str, version: int, when: datetime, **fields: object
) -> pb.CorrectOccurrenceRequest:
    fields.setdefault("reason", "the producer's clock was an hour fast")
    return request(
        pb.CorrectOccurrenceRequest,
        case_id,
        command_id,
        corrects_version=version,
        corrected_occurred_at=ts(when),
        **fields,
    )


def test_a_correction_is_a_new_event_shown_beside_the_original_and_read_models_follow_it(
    stub: ledger_pb2_grpc.LedgerServiceStub,
    audit: audit_pb2_grpc.AuditServiceStub,
    grpc_channel: grpc.Channel,
) -> None:
    stub.Assign(assign("AUD-1", "a1", occurred_at=ts(NINE)))
    stub.Transfer(transfer("AUD-1", "a2", BOB, occurred_at=ts(NINE + timedelta(hours=2))))
    fixed = stub.CorrectOccurrence(correction("AUD-1", "a3", 2, NINE + timedelta(hours=1))).result
    assert (fixed.version, fixed.events_recorded) == (3, 1)

    history = audit.ReadCaseHistory(apb.ReadCaseHistoryRequest(case_id="AUD-1")).events
    assert [(e.version, e.type) for e in history] == [
        (1, "Assigned"),
        (2, "Transferred"),
        (3, "OccurrenceCorrected"),
    ]
    original, corrected = history[1], history[2]
    assert original.occurred_at.ToDatetime(tzinfo=UTC) == NINE + timedelta(hours=2)
    assert list(original.corrected_by_versions) == [3]
    assert corrected.corrects_version == 2
    payload = json.loads(corrected.payload_json)
    assert payload["original_occurred_at"] == "2026-02-02T11:00:00.000000Z"
    assert payload["corrected_occurred_at"] == "2026-02-02T10:00:00.000000Z"
    assert history[0].hashes.previous == GENESIS
    assert [e.hashes.previous for e in history[1:]] == [e.hashes.chain for e in history[:-1]]

    # The ledger's own reads show the correction as an event of its own.
    events = stub.ReadCase(pb.ReadCaseRequest(case_id="AUD-1")).events
    assert events[2].occurrence_corrected.corrects_version == 2
    assert events[1].occurred_at.ToDatetime(tzinfo=UTC) == NINE + timedelta(hours=2)

    # Ownership periods follow the corrected time.
    query = query_pb2_grpc.QueryServiceStub(grpc_channel)
    found = query.GetOwnershipIntervals(
        q.GetOwnershipIntervalsRequest(
            case_id="AUD-1", level=q.OWNERSHIP_LEVEL_PERSON, min_position=fixed.position
        ),
        timeout=10,
    ).intervals
    assert [(i.holder, i.start.ToDatetime(tzinfo=UTC)) for i in found] == [
        ("alice", NINE),
        ("bob", NINE + timedelta(hours=1)),
    ]

    verified = audit.VerifyCase(apb.VerifyCaseRequest(case_id="AUD-1")).verification
    assert (verified.ok, verified.events, verified.break_count) == (True, 3, 0)


def test_verify_range_and_export_range_cover_the_global_order(
    stub: ledger_pb2_grpc.LedgerServiceStub, audit: audit_pb2_grpc.AuditServiceStub
) -> None:
    for n in range(4):
        stub.Assign(assign(f"AUD-R{n}", f"r{n}"))
        stub.Transfer(transfer(f"AUD-R{n}", f"t{n}", BOB))
    whole = audit.VerifyRange(apb.VerifyRangeRequest()).verification
    assert (whole.ok, whole.events, whole.cases, whole.first_position, whole.last_position) == (
        True,
        8,
        4,
        1,
        8,
    )
    part = audit.VerifyRange(apb.VerifyRangeRequest(first_position=3, last_position=6)).verification
    assert (part.ok, part.events, part.first_position, part.last_position) == (True, 4, 3, 6)

    streamed = [r.event for r in audit.ExportRange(apb.ExportRangeRequest(first_position=2))]
    assert [e.position for e in streamed] == list(range(2, 9))
    # The streamed events verify offline, as an export file would.
    lines = [
        export_line(
            record_from_line(
                {
                    "position": e.position,
                    "case_id": e.case_id,
                    "version": e.version,
                    "topic": e.topic,
                    "class_version": e.class_version,
                    "payload": json.loads(e.payload_json),
                    "hashes": {"chain": e.hashes.chain},
                }
            ),
            e.hashes.previous,
            getattr(e.hashes, "global"),
        )
        for e in streamed
    ]
    assert verify_lines(lines).ok


def test_audit_requests_that_cannot_be_answered_get_a_precise_status(
    stub: ledger_pb2_grpc.LedgerServiceStub, audit: audit_pb2_grpc.AuditServiceStub
) -> None:
    missing = refusal(audit.ReadCaseHistory, apb.ReadCaseHistoryRequest(case_id="NOPE"))
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    assert details(missing, error_details_pb2.ResourceInfo)[0].resource_name == "NOPE"
    assert refusal(audit.VerifyCase, apb.VerifyCaseRequest(case_id="NOPE")).code() == (
        grpc.StatusCode.NOT_FOUND
    )
    no_id = refusal(audit.VerifyCase, apb.VerifyCaseRequest(case_id=""))
    assert no_id.code() == grpc.StatusCode.INVALID_ARGUMENT
    backwards = refusal(
        audit.VerifyRange, apb.VerifyRangeRequest(first_position=5, last_position=2)
    )
    assert backwards.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = details(backwards, error_details_pb2.BadRequest)[0].field_violations
    assert [v.field for v in violations] == ["last_position"]
    with pytest.raises(grpc.RpcError) as negative:
        list(audit.ExportRange(apb.ExportRangeRequest(first_position=-1)))
    assert negative.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    stub.Assign(assign("AUD-E", "e1"))
    unknown = refusal(stub.CorrectOccurrence, correction("AUD-E", "e2", 7, NINE))
    assert unknown.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(unknown).reason == "CORRECTED_EVENT_NOT_FOUND"
    unexplained = refusal(stub.CorrectOccurrence, correction("AUD-E", "e3", 1, NINE, reason=""))
    assert unexplained.code() == grpc.StatusCode.INVALID_ARGUMENT
    no_time = refusal(
        stub.CorrectOccurrence,
        request(pb.CorrectOccurrenceRequest, "AUD-E", "e4", corrects_version=1, reason="x"),
    )
    assert [
        v.field for v in details(no_time, error_details_pb2.BadRequest)[0].field_violations
    ] == ["corrected_occurred_at"]
    future = refusal(
        stub.CorrectOccurrence, correction("AUD-E", "e5", 1, datetime.now(UTC) + timedelta(days=1))
    )
    assert future.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(stub.ReadCase(pb.ReadCaseRequest(case_id="AUD-E")).events) == 1, "nothing stored"


def test_the_serving_process_seals_the_global_order_by_itself(
    ledger: Ledger, stub: ledger_pb2_grpc.LedgerServiceStub
) -> None:
    stub.Assign(assign("AUD-S", "s1"))
    head = stub.Transfer(transfer("AUD-S", "s2", BOB)).result.position
    auditor = build_auditor(ledger.store)
    deadline = time.monotonic() + 30
    while (sealed := auditor.checkpoints.last_before(head)) is None or sealed.position < head:
        assert time.monotonic() < deadline, "no checkpoint covered the appends"
        time.sleep(0.2)
    assert auditor.verify_range().checkpoints >= 1

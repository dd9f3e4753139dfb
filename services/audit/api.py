"""AuditService: parse → auditor → reply. Errors leave through the one status table."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

import grpc

from ownership.v1 import audit_pb2 as pb
from ownership.v1 import audit_pb2_grpc
from services.audit.chain import Report, StoredRecord
from services.audit.service import Auditor, HistoryEntry
from services.ledger.api.rendering import timestamp
from services.ledger.api.servicer import errors_as_status
from services.ledger.application.errors import FieldViolation, InvalidCommand
from services.ledger.application.validation import Limits, id_violations

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["AuditService"].full_name


def _time(text: str) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def audited_event(
    record: StoredRecord,
    previous_hash: str,
    global_hash: str = "",
    corrects_version: int = 0,
    corrected_by: tuple[int, ...] = (),
) -> pb.AuditedEvent:
    return pb.AuditedEvent(
        position=record.position,
        case_id=record.case_id,
        version=record.version,
        type=record.topic.rsplit(".", 1)[-1],
        topic=record.topic,
        class_version=record.class_version,
        occurred_at=timestamp(_time(record.occurred_at)),
        recorded_at=timestamp(_time(record.recorded_at)),
        payload_json=json.dumps(
            record.fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ),
        hashes=pb.EventHashes(
            previous=previous_hash, chain=record.chain_hash or "", **{"global": global_hash}
        ),
        corrects_version=corrects_version,
        corrected_by_versions=list(corrected_by),
    )


def _history_event(entry: HistoryEntry) -> pb.AuditedEvent:
    return audited_event(
        entry.record,
        entry.previous_hash,
        corrects_version=entry.corrects_version,
        corrected_by=entry.corrected_by,
    )


def verification(report: Report) -> pb.Verification:
    return pb.Verification(
        ok=report.ok,
        events=report.events,
        cases=report.cases,
        first_position=report.first_position,
        last_position=report.last_position,
        checkpoints=report.checkpoints,
        break_count=report.break_count,
        breaks=[
            pb.ChainBreak(
                kind=f"BREAK_KIND_{b.kind}",
                case_id=b.case_id,
                version=b.version,
                position=b.position,
                expected=b.expected,
                found=b.found,
                detail=b.detail,
            )
            for b in report.breaks
        ],
    )


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):  # type: ignore[misc]
    def __init__(self, auditor: Auditor, limits: Limits) -> None:
        self._auditor = auditor
        self._limits = limits

    def ReadCaseHistory(
        self, request: pb.ReadCaseHistoryRequest, context: grpc.ServicerContext
    ) -> pb.ReadCaseHistoryResponse:
        with errors_as_status(context):
            history = self._auditor.case_history(self._case_id(request.case_id))
            return pb.ReadCaseHistoryResponse(events=[_history_event(e) for e in history])

    def VerifyCase(
        self, request: pb.VerifyCaseRequest, context: grpc.ServicerContext
    ) -> pb.VerifyCaseResponse:
        with errors_as_status(context):
            report = self._auditor.verify_case(self._case_id(request.case_id))
            return pb.VerifyCaseResponse(verification=verification(report))

    def VerifyRange(
        self, request: pb.VerifyRangeRequest, context: grpc.ServicerContext
    ) -> pb.VerifyRangeResponse:
        with errors_as_status(context):
            first, last = _range(request.first_position, request.last_position)
            report = self._auditor.verify_range(first, last)
            return pb.VerifyRangeResponse(verification=verification(report))

    def ExportRange(
        self, request: pb.ExportRangeRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ExportRangeResponse]:
        with errors_as_status(context):
            first, last = _range(request.first_position, request.last_position)
            for record, previous, global_hash in self._auditor.export_records(first, last):
                yield pb.ExportRangeResponse(event=audited_event(record, previous, global_hash))

    def _case_id(self, case_id: str) -> str:
        violations = id_violations("case_id", case_id, self._limits)
        if violations:
            raise InvalidCommand(violations)
        return case_id


def _range(first: int, last: int) -> tuple[int, int | None]:
    violations = []
    if first < 0:
        violations.append(FieldViolation("first_position", "must not be negative"))
    if last < 0:
        violations.append(FieldViolation("last_position", "must not be negative"))
    if last and last < max(first, 1):
        violations.append(
            FieldViolation("last_position", f"{last} comes before first_position {first}")
        )
    if violations:
        raise InvalidCommand(violations)
    return max(first, 1), last or None

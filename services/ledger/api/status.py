"""The one place where errors become gRPC status codes with google.rpc details.

A caller's mistake never becomes INTERNAL: every error the domain or application raises on
purpose has a code here. INTERNAL is left for bugs, and its message does not leak internals.
"""

from __future__ import annotations

import logging

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from services.ledger.application.errors import (
    CommandIdReused,
    DeadlineExceeded,
    InvalidCommand,
    ProjectionBehind,
    StoreUnavailable,
    VersionConflict,
)
from services.ledger.domain.errors import CaseNotFound, RuleViolated

DOMAIN = "ownership.v1"
log = logging.getLogger(__name__)


def _status(code: int, message: str, *details: Message) -> status_pb2.Status:
    packed = []
    for detail in details:
        holder = any_pb2.Any()
        holder.Pack(detail)
        packed.append(holder)
    return status_pb2.Status(code=code, message=message, details=packed)


def _info(reason: str, **metadata: object) -> error_details_pb2.ErrorInfo:
    return error_details_pb2.ErrorInfo(
        reason=reason, domain=DOMAIN, metadata={k: str(v) for k, v in metadata.items()}
    )


def status_for(error: Exception) -> status_pb2.Status:
    """The google.rpc.Status a caller receives for ``error``."""
    match error:
        case InvalidCommand():
            return _status(
                code_pb2.INVALID_ARGUMENT,
                str(error),
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description
                        )
                        for v in error.violations
                    ]
                ),
            )
        case RuleViolated():
            return _status(
                code_pb2.FAILED_PRECONDITION,
                error.message,
                _info(error.rule.value, case_id=error.case_id),
                error_details_pb2.PreconditionFailure(
                    violations=[
                        error_details_pb2.PreconditionFailure.Violation(
                            type=error.rule.value, subject=error.case_id, description=error.message
                        )
                    ]
                ),
            )
        case CaseNotFound():
            return _status(
                code_pb2.NOT_FOUND,
                str(error),
                error_details_pb2.ResourceInfo(
                    resource_type=f"{DOMAIN}.Case",
                    resource_name=error.case_id,
                    description="no events are stored for this case",
                ),
            )
        case VersionConflict():
            return _status(
                code_pb2.ABORTED,
                str(error),
                _info(
                    "VERSION_CONFLICT",
                    case_id=error.case_id,
                    expected_version=error.expected,
                    current_version=error.actual,
                ),
            )
        case CommandIdReused():
            return _status(
                code_pb2.ALREADY_EXISTS,
                str(error),
                _info(
                    "COMMAND_ID_REUSED",
                    command_id=error.command_id,
                    original_case_id=error.original_case_id,
                    original_kind=error.original_kind,
                ),
            )
        case StoreUnavailable():
            return _status(
                code_pb2.UNAVAILABLE,
                str(error),
                _info("STORE_UNAVAILABLE"),
                error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=1)),
            )
        case DeadlineExceeded():
            return _status(code_pb2.DEADLINE_EXCEEDED, str(error))
        case ProjectionBehind():
            return _status(
                code_pb2.DEADLINE_EXCEEDED,
                str(error),
                _info("PROJECTION_BEHIND", position=error.current, min_position=error.wanted),
            )
    log.exception("unexpected error", exc_info=error)
    return _status(code_pb2.INTERNAL, "internal error; it has been logged")


def grpc_code(status: status_pb2.Status) -> grpc.StatusCode:
    return next(code for code in grpc.StatusCode if code.value[0] == status.code)

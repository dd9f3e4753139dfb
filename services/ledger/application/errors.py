"""Errors of the application layer: what goes wrong around the domain rules."""

from __future__ import annotations

from dataclasses import dataclass


class ApplicationError(Exception):
    """Base of every error the application layer raises on purpose."""


@dataclass(frozen=True, slots=True)
class FieldViolation:
    field: str
    description: str


class InvalidCommand(ApplicationError):
    """The request itself is malformed; nothing about the case's history was consulted."""

    def __init__(self, violations: list[FieldViolation]) -> None:
        assert violations, "an invalid command names at least one field"
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in violations))
        self.violations = violations


class VersionConflict(ApplicationError):
    def __init__(self, case_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"case {case_id!r} is at version {actual}, but the command expected version {expected}"
        )
        self.case_id = case_id
        self.expected = expected
        self.actual = actual


class CommandIdReused(ApplicationError):
    """The idempotency key was already used for a different request."""

    def __init__(self, command_id: str, original_case_id: str, original_kind: str) -> None:
        super().__init__(
            f"command_id {command_id!r} was already used for a different request "
            f"({original_kind} on case {original_case_id!r}); use a fresh command_id"
        )
        self.command_id = command_id
        self.original_case_id = original_case_id
        self.original_kind = original_kind


class StoreUnavailable(ApplicationError):
    """The event store could not be reached; the command may be retried with the same command_id."""


class DeadlineExceeded(ApplicationError):
    """The caller's deadline passed before the command was written; nothing was stored."""


class ProjectionBehind(ApplicationError):
    """A read asked for a position (its consistency token) the read models have not reached."""

    def __init__(self, wanted: int, current: int) -> None:
        super().__init__(
            f"the read models are at position {current}; position {wanted} was not projected "
            "before the deadline"
        )
        self.wanted = wanted
        self.current = current

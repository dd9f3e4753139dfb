"""Errors of the domain. They name the broken rule; mapping them to transport codes happens elsewhere."""

from __future__ import annotations

from enum import Enum


class Rule(Enum):
    """Every rule a command can break, with a stable code that callers may match on."""

    CASE_ALREADY_ASSIGNED = "CASE_ALREADY_ASSIGNED"
    CASE_RESOLVED = "CASE_RESOLVED"
    CASE_NOT_RESOLVED = "CASE_NOT_RESOLVED"
    OWNER_CANNOT_JOIN_OWN_SWARM = "OWNER_CANNOT_JOIN_OWN_SWARM"
    ALREADY_IN_SWARM = "ALREADY_IN_SWARM"
    NOT_IN_SWARM = "NOT_IN_SWARM"
    ALREADY_PAUSED = "ALREADY_PAUSED"
    NOT_PAUSED = "NOT_PAUSED"
    CORRECTED_EVENT_NOT_FOUND = "CORRECTED_EVENT_NOT_FOUND"
    CORRECTION_OF_A_CORRECTION = "CORRECTION_OF_A_CORRECTION"


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""


class RuleViolated(DomainError):
    """A command asks for something the case's history does not allow."""

    def __init__(self, rule: Rule, case_id: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.case_id = case_id
        self.message = message


class CaseNotFound(DomainError):
    def __init__(self, case_id: str) -> None:
        super().__init__(f"case {case_id!r} does not exist; a case starts with Assign")
        self.case_id = case_id

"""Shape checks on commands: lengths, characters, times. They run before any history is read."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from services.ledger.application.commands import Command
from services.ledger.application.errors import FieldViolation
from services.ledger.domain.values import Owner

ID_FIELDS = frozenset({"case_id", "command_id", "actor", "agent_id", "group_id"})
TEXT_FIELDS = frozenset({"note", "reason", "resolution_code", "activity"})
REQUIRED_FIELDS = frozenset({"case_id", "command_id", "actor"})
TIME_FIELDS = frozenset({"occurred_at", "corrected_occurred_at"})


@dataclass(frozen=True, slots=True)
class Limits:
    max_id_length: int = 128
    max_note_length: int = 4096
    max_future_skew: timedelta = timedelta(minutes=5)
    max_batch_commands: int = 1000


def violations_of(command: Command, limits: Limits, now: datetime) -> list[FieldViolation]:
    """Every shape problem of the command, each naming its field; empty when the shape is fine."""
    names = _FIELD_NAMES.get(type(command))
    if names is None:
        names = _FIELD_NAMES[type(command)] = tuple(f.name for f in fields(command))
    return violations_of_values({name: getattr(command, name) for name in names}, limits, now)


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def violations_of_values(
    values: Mapping[str, Any], limits: Limits, now: datetime
) -> list[FieldViolation]:
    """The same checks on a command's fields by name (also usable before a command exists)."""
    found: list[FieldViolation] = []
    for name, value in values.items():
        if isinstance(value, Owner):
            found += _check_id(f"{name}.agent_id", value.agent_id, limits, required=False)
            found += _check_id(f"{name}.group_id", value.group_id, limits, required=False)
        elif name in ID_FIELDS and isinstance(value, str):
            found += _check_id(name, value, limits, required=name in REQUIRED_FIELDS)
        elif name in TEXT_FIELDS and isinstance(value, str):
            found += _check_text(name, value, limits)
        elif name in TIME_FIELDS and value is not None:
            if value.tzinfo is None:
                found.append(FieldViolation(name, "must carry a time zone"))
            elif value - now > limits.max_future_skew:
                found.append(
                    FieldViolation(
                        name,
                        f"is {value - now} in the future; the allowed clock skew is "
                        f"{limits.max_future_skew}",
                    )
                )
    expected_version = values.get("expected_version")
    if expected_version is not None and expected_version < 0:
        found.append(FieldViolation("expected_version", "must not be negative"))
    return found


def id_violations(name: str, value: str, limits: Limits) -> list[FieldViolation]:
    """Shape problems of one required identifier (for reads, which have no command)."""
    return _check_id(name, value, limits, required=True)


def _check_id(name: str, value: str, limits: Limits, *, required: bool) -> list[FieldViolation]:
    if not value:
        return [FieldViolation(name, "is required")] if required else []
    if len(value) > limits.max_id_length:
        return [FieldViolation(name, f"is longer than {limits.max_id_length} characters")]
    if value != value.strip():
        return [FieldViolation(name, "must not start or end with white space")]
    if not value.isprintable() and any(_is_control(ch) for ch in value):
        return [FieldViolation(name, "must not contain control characters")]
    return []


def _check_text(name: str, value: str, limits: Limits) -> list[FieldViolation]:
    if len(value) > limits.max_note_length:
        return [FieldViolation(name, f"is longer than {limits.max_note_length} characters")]
    # Format characters (e.g. the zero-width joiner inside emoji) are fine in free text, and so
    # are the line breaks of every platform.
    if not value.isprintable() and any(
        unicodedata.category(ch) in {"Cc", "Cs"} and ch not in "\n\r\t" for ch in value
    ):
        return [
            FieldViolation(
                name, "must not contain control characters other than line breaks and tab"
            )
        ]
    return []


def _is_control(ch: str) -> bool:
    # Cc: C0/C1 controls; Cf: invisible format characters such as bidi overrides; Cs: lone surrogates.
    return unicodedata.category(ch) in {"Cc", "Cf", "Cs"}

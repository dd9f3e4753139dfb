"""``datetime.isoformat()`` of UTC times, remembered.

A command's ``occurred_at`` and an event's recording time are each written as text several times
over: in the command's fingerprint, in the event's chain hash and in its stored JSON. Formatting
costs a couple of microseconds each time; looking the text up costs a tenth of that.

Remembered by identity: the same datetime object travels from the command through the
decision to the stored event, and an entry holds its object, so its id is not reused while
remembered. Only times in ``UTC`` itself are remembered (every recorded time, and every request
time, is). Pure Python: no I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime

# Enough for every time of a few import transactions; cleared whole when full (no bookkeeping).
MAX_REMEMBERED = 16_384
_TEXT: dict[int, tuple[datetime, str]] = {}


def iso_text(value: datetime) -> str:
    """``value.isoformat()``."""
    if value.tzinfo is not UTC:
        return value.isoformat()
    remembered = _TEXT.get(id(value))
    if remembered is not None and remembered[0] is value:
        return remembered[1]
    text = value.isoformat()
    if len(_TEXT) >= MAX_REMEMBERED:
        _TEXT.clear()
    _TEXT[id(value)] = (value, text)
    return text


def iso_text_microseconds(value: datetime) -> str:
    """``value.isoformat(timespec="microseconds")``: always six digits of microseconds."""
    if value.tzinfo is not UTC or type(value) is not datetime:
        return value.isoformat(timespec="microseconds")
    text = iso_text(value)
    # "YYYY-MM-DDTHH:MM:SS" is 19 characters; isoformat() leaves out a zero fraction.
    return text if value.microsecond else text[:19] + ".000000" + text[19:]

"""``datetime.isoformat()`` of UTC instants, remembered.

A command's ``occurred_at`` and an event's recording time are each written as text several times
over: in the command's fingerprint, in the event's chain hash and in its stored JSON. Formatting
costs a couple of microseconds each time; looking the text up costs a tenth of that.

Only ``datetime`` instances whose ``tzinfo`` is ``UTC`` itself are remembered: equal aware
datetimes in other zones are the same instant written differently, and a subclass may format
itself otherwise. Pure Python: no I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime

# Enough for every time of a few import transactions; cleared whole when full (no bookkeeping).
MAX_REMEMBERED = 16_384
_TEXT: dict[datetime, str] = {}


def iso_text(value: datetime) -> str:
    """``value.isoformat()``."""
    if value.tzinfo is not UTC or type(value) is not datetime:
        return value.isoformat()
    text = _TEXT.get(value)
    if text is None:
        if len(_TEXT) >= MAX_REMEMBERED:
            _TEXT.clear()
        text = _TEXT[value] = value.isoformat()
    return text


def iso_text_microseconds(value: datetime) -> str:
    """``value.isoformat(timespec="microseconds")``: always six digits of microseconds."""
    if value.tzinfo is not UTC or type(value) is not datetime:
        return value.isoformat(timespec="microseconds")
    text = iso_text(value)
    # "YYYY-MM-DDTHH:MM:SS" is 19 characters; isoformat() leaves out a zero fraction.
    return text if value.microsecond else text[:19] + ".000000" + text[19:]

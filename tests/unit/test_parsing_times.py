"""Request times are read as protobuf's ``ToDatetime(tzinfo=UTC)`` reads them.

The parser converts the common case itself (imports read every command's time); these hold its
result next to protobuf's own at the edges of the range and of the nanoseconds, and check that a
time outside the range is still refused by field.
"""

from __future__ import annotations

from datetime import UTC

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from ownership.v1 import ledger_pb2 as pb
from services.ledger.api import parsing
from services.ledger.application.errors import InvalidCommand
from services.ledger.application.validation import Limits

FIRST, LAST = -62_135_596_800, 253_402_300_799


@pytest.mark.parametrize("seconds", [FIRST, FIRST + 1, -1, 0, 1, 1_767_225_600, LAST - 1, LAST])
@pytest.mark.parametrize("nanos", [0, 1, 999, 1_000, 123_456_789, 999_999_999])
def test_a_time_in_range_reads_as_to_datetime_reads_it(seconds: int, nanos: int) -> None:
    request = pb.ResumeRequest(
        case_id="C", command_id="c", actor="a", occurred_at=Timestamp(seconds=seconds, nanos=nanos)
    )
    read = parsing.resume(request, Limits())  # the clock skew is checked later, by the handler
    expected = request.occurred_at.ToDatetime(tzinfo=UTC)
    assert read.occurred_at == expected
    assert read.occurred_at is not None and read.occurred_at.tzinfo is UTC
    assert read.occurred_at.isoformat() == expected.isoformat()


@pytest.mark.parametrize(
    ("seconds", "nanos"), [(FIRST - 1, 0), (LAST + 1, 0), (0, -1), (0, 1_000_000_000)]
)
def test_a_time_out_of_range_is_refused_by_field(seconds: int, nanos: int) -> None:
    request = pb.ResumeRequest(
        case_id="C", command_id="c", actor="a", occurred_at=Timestamp(seconds=seconds, nanos=nanos)
    )
    with pytest.raises(InvalidCommand) as refused:
        parsing.resume(request, Limits())
    assert [v.field for v in refused.value.violations] == ["occurred_at"]

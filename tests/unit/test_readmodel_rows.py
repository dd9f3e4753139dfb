"""Row making the projector uses on its hot path equals the plain forms it stands in for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.ledger.domain.case import Case
from services.ledger.domain.values import Owner, SwarmRole
from services.projector import readmodels as rm
from services.projector.credit import POLICIES, chosen_policies, posted_entries, resolution_shares
from tests.unit.test_credit_policies import ALICE, BOB, at, hand, timeline_of


@pytest.mark.parametrize(
    "value",
    [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # before the epoch
        datetime(2026, 3, 1, 11, 30, tzinfo=timezone(timedelta(hours=2))),  # not UTC
    ],
)
def test_micros_counts_every_microsecond_since_the_epoch(value: datetime) -> None:
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    assert (
        rm.micros(value) == (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    )
    assert rm.from_micros(rm.micros(value)) == value


def test_credit_rows_equal_the_rows_of_the_posted_entries() -> None:
    """Reopened (credits and reversals), a bot resolving, a swarm helper: every kind of entry."""
    case = Case.open("INC-9", ALICE, None, "", at(9))
    case.join_swarm("carol", "platform-l3", SwarmRole.CONTRIBUTOR, "", at(9, 10))
    hand(case, BOB, at(10))
    case.resolve("fixed", "", at(11))
    case.reopen("still broken", "", at(11, 30))
    hand(case, Owner("bot:triage", "service-desk"), at(12))
    case.resolve("fixed", "", at(12, 30))
    timeline = timeline_of(case)
    chosen = chosen_policies(POLICIES.values())
    kinds = set()
    for resolution in timeline.resolutions:
        shares = resolution_shares(timeline, resolution, chosen)
        expected = [rm.credit_row(e) for e in posted_entries(case.id, resolution, shares)]
        assert rm.credit_rows(case.id, resolution, shares) == expected
        kinds |= {row[6] for row in expected}
    assert kinds == {"credit", "assist", "reversal"}

"""Handoff figures of one case: changes, stations, returns, ping-pong, warm share, tiers crossed.

Definitions (per level, person or group; events with no owner at that level are ignored):
- runs: consecutive equal owners collapsed, g1 … gm, in event-time order.
- changes (handovers) = m − 1; stations = m (A→B→A is 3 stations).
- returns: runs whose owner held the case in some earlier run.
- ping-pong returns: k ≥ 3 with g_k = g_(k−2); a ping-pong case has at least one.
- longest ping-pong: the most stations in a stretch alternating between two owners (≥ 3), else 0.
- warm / cold: transfers flagged warm or not (person or group moves alike).
- tiers crossed: Σ |to_tier − from_tier| over transfers where both tiers are known (L1→L3 is 2).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import pairwise

from services.ledger.domain.values import Owner, Tier
from services.projector.timeline import CaseTimeline, Level

TIER_RANK = {Tier.L1: 1, Tier.L2: 2, Tier.L3: 3, Tier.L4: 4}


def runs(owners: list[Owner], level: Level) -> list[str]:
    collapsed: list[str] = []
    for owner in owners:
        holder = owner.agent_id if level is Level.PERSON else owner.group_id
        if holder and (not collapsed or collapsed[-1] != holder):
            collapsed.append(holder)
    return collapsed


@dataclass(frozen=True, slots=True)
class LevelStats:
    changes: int
    stations: int
    unique_owners: int
    returns: int
    pingpong_returns: int
    longest_pingpong: int
    edges: Counter[tuple[str, str]]


def level_stats(sequence: list[str]) -> LevelStats:
    seen: set[str] = set()
    returns = 0
    for holder in sequence:
        if holder in seen:
            returns += 1
        seen.add(holder)
    pingpong = [k for k in range(2, len(sequence)) if sequence[k] == sequence[k - 2]]
    longest = 0
    stretch = 0
    for k in range(2, len(sequence)):
        stretch = stretch + 1 if sequence[k] == sequence[k - 2] else 0
        if stretch:
            longest = max(longest, stretch + 2)
    return LevelStats(
        changes=max(len(sequence) - 1, 0),
        stations=len(sequence),
        unique_owners=len(seen),
        returns=returns,
        pingpong_returns=len(pingpong),
        longest_pingpong=longest,
        edges=Counter(pairwise(sequence)),
    )


@dataclass(frozen=True, slots=True)
class HandoffStats:
    person: LevelStats
    group: LevelStats
    warm: int
    cold: int
    tiers_crossed: int


def handoff_stats(timeline: CaseTimeline) -> HandoffStats:
    crossed = sum(
        abs(TIER_RANK[h.to_tier] - TIER_RANK[h.from_tier])
        for h in timeline.handoffs
        if h.to_tier is not None and h.from_tier is not None
    )
    warm = sum(1 for h in timeline.handoffs if h.warm)
    return HandoffStats(
        person=level_stats(runs(timeline.owner_sequence, Level.PERSON)),
        group=level_stats(runs(timeline.owner_sequence, Level.GROUP)),
        warm=warm,
        cold=len(timeline.handoffs) - warm,
        tiers_crossed=crossed,
    )

"""Credit attribution: who is credited for each resolution of a case, under named, versioned policies.

A policy turns one resolution of a case's timeline into shares, ``(party, kind) -> amount``, using
only what had happened by the resolution's event time. ``credit_entries`` turns every resolution of
a timeline into ledger-style entries under every chosen policy: credits (and assists) at the
resolution, and, when a reopening later undid that resolution, compensating ``reversal`` entries at
the reopening, so an undone resolution nets to zero and the next resolution credits afresh.

Rules shared by every policy:

- Who counts as *involved* in a resolution: every person who owned the case (a person tenure that
  started before the resolution), every person who took part in its swarm in a non-observer role
  (a participation that started before the resolution), and the resolver when it is a person (it
  holds the case at the resolution, even when that tenure began at the very same instant).
- Observers earn nothing for observing. Someone who observed and also owned or contributed counts
  for the owning and contributing only.
- Bots earn nothing. ``is_bot(agent_id)`` decides who is a bot (``default_is_bot`` unless a caller
  passes another). A bot is never one of "the others" a share is split among; when a bot would get
  a share (it resolved the case, it opened it) that share is dropped, and the shares of a policy
  that sums to one are renormalised over the humans left. When nobody is left, the policy credits
  nobody: its result is empty.
- A person is credited as one party, ``Party(agent_id, group_id)``, whatever groups they worked in:
  the resolver in the group it resolved the case in; anyone else in the group of their latest
  ownership before the resolution, or, if they never owned it, of their latest non-observer swarm
  participation. A group queue owner with no person on it is ``Party("", group_id)``.
- When no person at all was involved (the case only ever sat in group queues), the resolving
  group is credited in full by every policy that credits people.
- Amounts are floats (shares that must sum to one are renormalised); zero amounts are left out.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import NamedTuple

from services.ledger.domain.values import Owner, SwarmRole
from services.projector.timeline import CaseTimeline, Resolution, Span

CREDIT = "credit"
ASSIST = "assist"
REVERSAL = "reversal"

IsBot = Callable[[str], bool]

_MICROSECOND = timedelta(microseconds=1)


def default_is_bot(agent_id: str) -> bool:
    """Ids such as ``bot:triage``, ``renovate[bot]`` or ``triage-bot`` belong to bots."""
    return agent_id.startswith("bot:") or agent_id.endswith(("[bot]", "-bot"))


class Party(NamedTuple):
    """Who is credited: a person in the group they worked the case in, or a group queue.

    A named tuple, not a dataclass: parties are dictionary keys and sort keys in every share, and
    a tuple hashes and compares in C.
    """

    agent_id: str
    group_id: str

    @classmethod
    def of(cls, owner: Owner) -> Party:
        return cls(owner.agent_id, owner.group_id)

    @property
    def is_person(self) -> bool:
        return bool(self.agent_id)

    def __str__(self) -> str:
        if self.agent_id and self.group_id:
            return f"{self.agent_id}@{self.group_id}"
        return self.agent_id or f"queue:{self.group_id}"


@dataclass(frozen=True, slots=True)
class CreditEntry:
    """One line of the credit ledger of a case.

    ``at`` is the resolution time for a credit or an assist and the reopening time for a reversal.
    A reversal negates the entry with the same case, policy, resolution and party.
    """

    case_id: str
    policy: str
    policy_version: int
    party: Party
    amount: float
    kind: str  # "credit", "assist" or "reversal"
    resolution_seq: int
    at: datetime

    @property
    def label(self) -> str:
        return f"{self.policy}@{self.policy_version}"


Shares = dict[tuple[Party, str], float]


# --- what happened by a resolution ----------------------------------------------------------------

Interval = tuple[datetime, datetime]


def _clip(span: Span, lo: datetime, hi: datetime) -> Interval | None:
    start = max(span.start, lo)
    end = min(span.end if span.end is not None else hi, hi)
    return (start, end) if end > start else None


def _union(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _length(intervals: Iterable[Interval]) -> timedelta:
    return sum((end - start for start, end in intervals), timedelta(0))


def _overlap(a: list[Interval], b: list[Interval]) -> timedelta:
    """Length of the intersection of two merged (sorted, disjoint) interval lists."""
    total, i, j = timedelta(0), 0, 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if end > start:
            total += end - start
        if a[i][1] <= b[j][1]:
            i += 1
        else:
            j += 1
    return total


@dataclass(frozen=True, slots=True)
class Involvement:
    """Who was involved in one resolution, and how, as of the resolution's event time."""

    timeline: CaseTimeline
    resolution: Resolution
    is_bot: IsBot
    resolver: Party
    people: tuple[Party, ...]  # every involved person, bots included, sorted
    humans: tuple[Party, ...]  # ``people`` without the bots

    @classmethod
    def of(cls, timeline: CaseTimeline, resolution: Resolution, is_bot: IsBot) -> Involvement:
        at = resolution.at
        resolver = Party.of(resolution.resolver)
        # agent_id -> (start of the latest ownership, group) and the same for swarm participation
        owned: dict[str, tuple[datetime, str]] = {}
        helped: dict[str, tuple[datetime, str]] = {}
        for tenure in timeline.person_tenures:
            start = tenure.span.start
            if start < at and (tenure.holder not in owned or owned[tenure.holder][0] <= start):
                owned[tenure.holder] = (start, tenure.group_id)
        for part in timeline.swarm:
            start = part.span.start
            if part.role is SwarmRole.OBSERVER or start >= at:
                continue
            if part.agent_id not in helped or helped[part.agent_id][0] <= start:
                helped[part.agent_id] = (start, part.group_id)
        groups = {agent: group for agent, (_, group) in helped.items()}
        groups.update({agent: group for agent, (_, group) in owned.items()})
        if resolver.is_person:
            groups[resolver.agent_id] = resolver.group_id
        people = tuple(sorted(Party(agent, group) for agent, group in groups.items()))
        humans = tuple(p for p in people if not is_bot(p.agent_id))
        return cls(timeline, resolution, is_bot, resolver, people, humans)

    def others(self) -> tuple[Party, ...]:
        """The involved humans other than the resolver."""
        return tuple(p for p in self.humans if p != self.resolver)

    def involvement(self, agent_id: str, paused: list[Interval] | None = None) -> timedelta:
        """Time ``agent_id`` owned the case or worked in its swarm (not as an observer), counted
        once where the two overlap, within [opened, resolved] and outside pauses (``paused``:
        ``paused()`` worked out once by a caller asking for several people)."""
        lo, hi = self.timeline.opened_at, self.resolution.at
        spans = [t.span for t in self.timeline.person_tenures if t.holder == agent_id]
        spans += [
            p.span
            for p in self.timeline.swarm
            if p.agent_id == agent_id and p.role is not SwarmRole.OBSERVER
        ]
        worked = _union(i for s in spans if (i := _clip(s, lo, hi)) is not None)
        if paused is None:
            paused = self.paused()
        return _length(worked) - _overlap(worked, paused) if paused else _length(worked)

    def paused(self) -> list[Interval]:
        """When the case was paused within [opened, resolved], merged."""
        lo, hi = self.timeline.opened_at, self.resolution.at
        return _union(i for p in self.timeline.pauses if (i := _clip(p.span, lo, hi)) is not None)


# --- policies -------------------------------------------------------------------------------------


class CreditPolicy(ABC):
    """A named, versioned rule that shares the credit for one resolution.

    A definition never changes under a label: a different rule is a new version (or a new name), so
    entries written under ``name@version`` keep meaning what they meant.
    """

    name: str
    version: int
    sums_to_one: bool = True  # False: amounts are an overlay, e.g. a credit plus assists

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def shares(
        self, timeline: CaseTimeline, resolution: Resolution, is_bot: IsBot = default_is_bot
    ) -> Shares:
        """``(party, kind) -> amount`` for one resolution, from what happened by ``resolution.at``.

        Bots are dropped and, for a policy that sums to one, the rest renormalised to sum to one.
        """
        return self.shares_of(Involvement.of(timeline, resolution, is_bot))

    def shares_of(self, inv: Involvement) -> Shares:
        """As ``shares``, for an involvement already worked out (one serves every policy)."""
        is_bot, humans = inv.is_bot, inv.humans
        kept = {
            key: amount
            for key, amount in self._shares(inv).items()
            # an involved human is known not to be a bot: ask is_bot only about anyone else
            if amount > 0 and not (key[0][0] and key[0] not in humans and is_bot(key[0][0]))
        }
        if self.sums_to_one:
            total = sum(kept.values(), 0.0)
            if total > 0:
                return {key: kept[key] / total for key in sorted(kept)}
        return {key: float(kept[key]) for key in sorted(kept)}

    @abstractmethod
    def _shares(self, inv: Involvement) -> dict[tuple[Party, str], float]:
        """The shares before bots are dropped and the rest renormalised."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label}>"


class ResolverTakesAll(CreditPolicy):
    """The resolver takes 1.0 credit: the person who held the case when it was resolved, or the
    group queue when no person held it. A bot resolver means nobody is credited."""

    name = "ResolverTakesAll"
    version = 1

    def _shares(self, inv: Involvement) -> dict[tuple[Party, str], float]:
        return {(inv.resolver, CREDIT): 1.0}


class FirstOwnerTakesAll(CreditPolicy):
    """Total contact ownership: the case's first owner (person, or group queue when it opened in a
    queue) takes 1.0 credit for every resolution, whoever resolved it. A bot first owner means
    nobody is credited."""

    name = "FirstOwnerTakesAll"
    version = 1

    def _shares(self, inv: Involvement) -> dict[tuple[Party, str], float]:
        return {(Party.of(inv.timeline.first_owner), CREDIT): 1.0}


def _group_only(inv: Involvement) -> dict[tuple[Party, str], float] | None:
    """No person was ever involved: the resolving group queue takes it all. None otherwise."""
    return None if inv.people else {(inv.resolver, CREDIT): 1.0}


class EqualSplit(CreditPolicy):
    """Every involved human (owned the case, or took part in its swarm as a non-observer, before the
    resolution; the resolver always) gets an equal credit, 1/n. A person counts once however often
    they held or helped. When no person was ever involved the resolving group queue gets 1.0; when
    the only people involved were bots, nobody is credited."""

    name = "EqualSplit"
    version = 1

    def _shares(self, inv: Involvement) -> dict[tuple[Party, str], float]:
        if (queue := _group_only(inv)) is not None:
            return queue
        return {(p, CREDIT): 1.0 / len(inv.humans) for p in inv.humans}


class OwnerBonus(CreditPolicy):
    """The resolver gets ``bonus`` credit; the other involved humans (EqualSplit's set without the
    resolver) split ``1 - bonus`` equally; with no others the resolver gets 1.0. A bot resolver's
    bonus is dropped and the others' shares renormalised to sum to one. A group-queue resolver is
    the resolver like any other and gets the bonus."""

    version = 1

    def __init__(self, bonus: float = 0.5) -> None:
        if not 0.0 <= bonus <= 1.0:
            raise ValueError(f"OwnerBonus bonus must be within [0, 1], not {bonus!r}")
        self.bonus = bonus
        self.name = f"OwnerBonus({float(bonus)!r})"

    def _shares(self, inv: Involvement) -> dict[tuple[Party, str], float]:
        others = inv.others()
        if not others:
            return {(inv.resolver, CREDIT): 1.0}
        bonus = float(self.bonus)
        shares = {(p, CREDIT): (1 - bonus) / len(others) for p in others}
        shares[(inv.resolver, CREDIT)] = bonus
        return shares


class TimeWeighted(CreditPolicy):
    """Each involved human's credit is proportional to their involvement: the length of the union
    of their ownership tenures and non-observer swarm participations, clipped to [case opened,
    resolution] and less the time the case was paused within that union (so time as owner and as
    swarm member at once counts once). Shares sum to 1. When every involvement is zero (e.g. a case
    resolved the instant it opened) it falls back to ResolverTakesAll. When no person was ever
    involved the resolving group queue gets 1.0; when the only people involved were bots, nobody."""

    name = "TimeWeighted"
    version = 1

    def _shares(self, inv: Involvement) -> dict[tuple[Party, str], float]:
        if (queue := _group_only(inv)) is not None:
            return queue
        if not inv.humans:
            return {}
        paused = inv.paused()
        weights = {p: inv.involvement(p.agent_id, paused) // _MICROSECOND for p in inv.humans}
        total = sum(weights.values())
        if total == 0:
            return {(inv.resolver, CREDIT): 1.0}
        return {(p, CREDIT): w / total for p, w in weights.items()}


class OverlayAssists(CreditPolicy):
    """The resolver gets 1.0 ``credit`` (a group queue resolver too; a bot resolver nothing), and
    every other involved human — an earlier owner or a non-observer swarm participant before the
    resolution — gets 1.0 ``assist``. Amounts overlay one another and need not sum to 1."""

    name = "OverlayAssists"
    version = 1
    sums_to_one = False

    def _shares(self, inv: Involvement) -> dict[tuple[Party, str], float]:
        shares = {(p, ASSIST): 1.0 for p in inv.others()}
        shares[(inv.resolver, CREDIT)] = 1.0
        return shares


# --- registry -------------------------------------------------------------------------------------

DEFAULT_OWNER_BONUS = OwnerBonus(0.5)

POLICIES: Mapping[str, CreditPolicy] = MappingProxyType(
    {
        policy.label: policy
        for policy in (
            ResolverTakesAll(),
            FirstOwnerTakesAll(),
            EqualSplit(),
            DEFAULT_OWNER_BONUS,
            TimeWeighted(),
            OverlayAssists(),
        )
    }
)

_ALIASES = {"OwnerBonus": DEFAULT_OWNER_BONUS.name}
_OWNER_BONUS = re.compile(r"OwnerBonus\((?P<bonus>[0-9]*\.?[0-9]+)\)")


class UnknownPolicy(KeyError, ValueError):
    """No credit policy answers to the given name or label."""

    def __init__(self, asked: str) -> None:
        self.asked = asked
        self.known = sorted(POLICIES)
        super().__init__(
            f"unknown credit policy {asked!r}; known policies: {', '.join(self.known)}"
            " (and OwnerBonus(b)@1 for any bonus b in [0, 1])"
        )

    def __str__(self) -> str:
        return str(self.args[0])


def resolve_policy(label_or_name: str) -> CreditPolicy:
    """The policy a label ("EqualSplit@1") or a bare name ("EqualSplit": its latest version) names.

    "OwnerBonus" is the default OwnerBonus(0.5); "OwnerBonus(0.7)" or "OwnerBonus(0.7)@1" builds
    that variant.
    """
    asked = label_or_name.strip()
    name, has_version, version_text = asked.partition("@")
    name = _ALIASES.get(name, name)
    if has_version and not version_text.isdigit():
        raise UnknownPolicy(label_or_name)
    candidates = [
        p
        for p in POLICIES.values()
        if p.name == name and (not has_version or p.version == int(version_text))
    ]
    if candidates:
        return max(candidates, key=lambda p: p.version)
    match = _OWNER_BONUS.fullmatch(name)
    if match and (not has_version or int(version_text) == OwnerBonus.version):
        bonus = float(match["bonus"])
        if 0.0 <= bonus <= 1.0:
            return OwnerBonus(bonus)
    raise UnknownPolicy(label_or_name)


# --- entries --------------------------------------------------------------------------------------


def credit_entries(
    timeline: CaseTimeline, policies: Iterable[CreditPolicy], is_bot: IsBot = default_is_bot
) -> list[CreditEntry]:
    """Every credit, assist and reversal of a case's resolutions under each of ``policies``.

    For each resolution and policy: its shares as entries at the resolution; and when a reopening
    undid the resolution, the same entries negated, of kind "reversal", at the reopening (never
    before the resolution itself, should clock skew put the reopening earlier). Ordered by
    resolution, policy label, credits before reversals, then party. A policy listed twice (same
    label) counts once.
    """
    chosen = chosen_policies(policies)
    entries: list[CreditEntry] = []
    for resolution in sorted(timeline.resolutions, key=lambda r: r.seq):
        shares = resolution_shares(timeline, resolution, chosen, is_bot)
        entries.extend(posted_entries(timeline.case_id, resolution, shares))
    return entries


PolicyShares = list[tuple[CreditPolicy, list[tuple[tuple[Party, str], float]]]]


def chosen_policies(policies: Iterable[CreditPolicy]) -> list[CreditPolicy]:
    """``policies`` once per label, in label order (the order entries are posted in)."""
    chosen = {p.label: p for p in policies}
    return [chosen[label] for label in sorted(chosen)]


def resolution_shares(
    timeline: CaseTimeline,
    resolution: Resolution,
    chosen: list[CreditPolicy],
    is_bot: IsBot = default_is_bot,
) -> PolicyShares:
    """Each policy's sorted shares of one resolution (``chosen`` as ``chosen_policies`` gives).

    They depend only on what happened by the resolution's event time, so a caller that sees the
    case's later events arrive in event-time order may keep them.
    """
    involvement = Involvement.of(timeline, resolution, is_bot)
    return [(policy, list(policy.shares_of(involvement).items())) for policy in chosen]  # sorted


def postings(resolution: Resolution) -> list[tuple[datetime, float, str | None]]:
    """When a resolution's shares are posted, with what sign and kind (None: each share's own):
    at the resolution and, when a reopening undid it, negated at the reopening (never before the
    resolution, whatever the clocks say)."""
    posted: list[tuple[datetime, float, str | None]] = [(resolution.at, 1.0, None)]
    if resolution.reopened_at is not None:
        posted.append((max(resolution.reopened_at, resolution.at), -1.0, REVERSAL))
    return posted


def posted_entries(case_id: str, resolution: Resolution, shares: PolicyShares) -> list[CreditEntry]:
    """The entries of one resolution (see ``postings``), policy by policy."""
    return [
        CreditEntry(
            case_id,
            policy.name,
            policy.version,
            party,
            sign * amount,
            posting_kind or kind,
            resolution.seq,
            at,
        )
        for policy, policy_shares in shares
        for at, sign, posting_kind in postings(resolution)
        for (party, kind), amount in policy_shares
    ]


def net_totals(entries: Iterable[CreditEntry]) -> dict[tuple[str, Party], float]:
    """Net amount per (policy label, party) over ``entries``: what stands after reversals."""
    totals: dict[tuple[str, Party], float] = {}
    for entry in entries:
        key = (entry.label, entry.party)
        totals[key] = totals.get(key, 0.0) + entry.amount
    return {key: totals[key] for key in sorted(totals)}

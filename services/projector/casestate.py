"""One case as the projector holds it in memory between batches, and a bounded set of them.

A case's read-model rows are a function of its events. Rather than derive them whole from the
full history on every batch, the projector keeps, per recently touched case, the events seen so
far, the Case aggregate, a ``TimelineBuilder`` and the rows last committed, and applies each new
event to them:

- an event in event-time order (its ``occurred_at`` is not earlier than any earlier event of the
  case) extends the timeline in place;
- a late one (clock skew, a delayed producer), or a correction of an earlier event's time,
  re-derives the case's timeline from all its events (as corrected), so it lands where event time
  puts it;
- credit shares of a resolution depend only on what happened by the resolution's event time, so
  they are worked out once per resolution and kept until a late event re-derives the case;
- handoff figures change only with the owner sequence, so they are recomputed only then.

The rows of the touched cases are then compared with the rows last committed, and only the
difference is written (``readmodels.RowChanges``). A case met for the first time since the
projector started is loaded from the ledger and its rows are replaced whole, since what is
stored for it is not known.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, cast

from services.ledger.domain.case import Case
from services.projector import casefacts
from services.projector import readmodels as rm
from services.projector.corrections import as_corrected
from services.projector.credit import (
    CreditPolicy,
    PolicyShares,
    resolution_shares,
)
from services.projector.timeline import TimelineBuilder, builder_of


class CaseState:
    """A case's events, aggregate, timeline and committed rows, extended one event at a time."""

    __slots__ = (
        "_credit",
        "_credit_at",
        "_final",
        "_handoffs",
        "_handoffs_at",
        "_shares",
        "_source_counter",
        "builder",
        "case",
        "case_id",
        "events",
        "last_position",
        "stored",
    )

    def __init__(self, case_id: str, events: Sequence[Case.Event], stored: rm.Rows | None) -> None:
        """``events`` in version order (none for a case about to open); ``stored``: the rows
        committed for exactly these events, or None when that is not known."""
        self.case_id = case_id
        self.events: list[Case.Event] = list(events)
        case: Any = None
        for event in self.events:
            case = event.mutate(case)
        self.case: Case | None = case
        corrected = as_corrected(self.events)
        self.builder: TimelineBuilder | None = builder_of(case_id, corrected) if corrected else None
        self._source_counter = casefacts.source_counter(corrected)
        self.last_position = 0
        self.stored = stored
        self._final: rm.FinalRows = {}  # rows of closed spans, final while events come in order
        self._shares: dict[int, tuple[Any, PolicyShares]] = {}  # resolution seq -> its shares
        self._handoffs: rm.Rows = {}
        self._handoffs_at: tuple[int, int] | None = None
        self._credit: list[tuple[Any, ...]] = []
        self._credit_at: tuple[Any, ...] | None = None

    @classmethod
    def opening(cls, case_id: str) -> CaseState:
        """A case whose first event is about to be applied: nothing is stored for it yet."""
        return cls(case_id, [], {name: [] for name in rm.PER_CASE_TABLES})

    @property
    def version(self) -> int:
        return self.case.version if self.case is not None else 0

    def apply(self, event: Case.Event, position: int) -> None:
        """Take the case's next event (version ``self.version + 1``) at ``position``."""
        if event.originator_version != self.version + 1:
            raise ValueError(
                f"case {self.case_id}: event version {event.originator_version} does not follow "
                f"{self.version}"
            )
        self.events.append(event)
        self.case = cast(Case, event.mutate(self.case))
        self.last_position = position
        in_order = self.builder is None or (
            event.occurred_at >= self.builder.last_at
            and not isinstance(event, Case.OccurrenceCorrected)
        )
        if in_order:
            if self.builder is None:
                self.builder = TimelineBuilder(self.case_id, event)
            self.builder.add(event)
            counter = casefacts.reassignment_count(event)
            if counter is not None:  # the latest in event time so far
                self._source_counter = counter
        else:  # a late event or a corrected time: everything after it in event time moves
            corrected = as_corrected(self.events)
            self.builder = builder_of(self.case_id, corrected)
            self._source_counter = casefacts.source_counter(corrected)
            self._final.clear()
            self._shares.clear()
            self._handoffs_at = None
            self._credit_at = None

    def rows(self, chosen: list[CreditPolicy]) -> rm.Rows:
        """Every row of the case as of the events applied so far (at least one), with credit
        under ``chosen`` (policies as ``credit.chosen_policies`` gives them)."""
        if self.builder is None or self.case is None:
            raise ValueError(f"case {self.case_id} has no events")
        timeline = self.builder.timeline()
        rows = rm.timeline_rows(self.case, timeline, self.last_position, self._final)
        handoffs_at = (len(timeline.owner_sequence), len(timeline.handoffs))
        if handoffs_at != self._handoffs_at:
            self._handoffs = rm.handoff_rows(timeline)
            self._handoffs_at = handoffs_at
        rows |= self._handoffs
        credit_at = tuple((r.seq, r.reopened_at) for r in timeline.resolutions)
        if credit_at != self._credit_at:
            credit = []
            for resolution in timeline.resolutions:
                key = (resolution.at, resolution.version, resolution.resolver)
                memo = self._shares.get(resolution.seq)
                if memo is None or memo[0] != key:
                    memo = (key, resolution_shares(timeline, resolution, chosen))
                    self._shares[resolution.seq] = memo
                credit += rm.credit_rows(self.case_id, resolution, memo[1])
            self._credit = credit
            self._credit_at = credit_at
        rows["credit"] = self._credit
        rows[casefacts.TABLE] = casefacts.case_fact_rows(timeline, self._source_counter)
        return rows


class CaseStates:
    """Recently touched cases, least recently used leaving first, so memory stays flat on any
    history length. A few thousand cover the cases open at once in real traffic; a miss costs one
    indexed read of the case's events and a whole-case write."""

    def __init__(self, max_cases: int) -> None:
        self._max_cases = max_cases
        self._cases: OrderedDict[str, CaseState] = OrderedDict()

    def get(self, case_id: str) -> CaseState | None:
        state = self._cases.get(case_id)
        if state is not None:
            self._cases.move_to_end(case_id)
        return state

    def put(self, state: CaseState) -> None:
        self._cases[state.case_id] = state
        self._cases.move_to_end(state.case_id)
        while len(self._cases) > self._max_cases:
            self._cases.popitem(last=False)

    def clear(self) -> None:
        self._cases.clear()

    def __len__(self) -> int:
        return len(self._cases)

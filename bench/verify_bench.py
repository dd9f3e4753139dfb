"""Verification benchmark on PostgreSQL: ``ledger verify`` over a large ledger.

A scratch database is filled with a realistic workload through the command handler (so every
event carries a real chain hash), the checkpointer seals it, and then, interleaved over several
rounds with medians reported:
- **verify**: the whole ledger (every case chain, positions, the global hash and checkpoints),
  exactly what ``ledger verify`` runs, against two baselines over the same rows in the same run:
  (a) the raw read alone (the same pages of rows, nothing done with them), and
  (b) the raw read plus ``json.loads`` of every state (the least any check must do).
- **seal**: one checkpointer pass over the whole ledger (done once, before the rounds).

Run: python -m bench.verify_bench [--events 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import sys

from bench.common import median, print_table, scratch_database, timed, write_json
from bench.projector_bench import fill
from services.audit.chain import Report
from services.audit.checkpoints import Checkpointer
from services.audit.service import PAGE
from services.bootstrap import build_auditor, build_store
from services.ledger.infrastructure.store import EventsourcingStore
from services.settings import Settings


def fill_to(store: EventsourcingStore, events: int) -> int:
    """At least ``events`` events: the workload's cases end a little short, so top up with more."""
    head = fill(store, events)
    rounds = 0
    while head < events:
        rounds += 1
        head = fill(store, events, prefix=f"T{rounds}")
    return head


def read_only(store: EventsourcingStore, head: int) -> int:
    count = position = 0
    while position < head and (rows := store.raw_events(position, PAGE, head)):
        count += len(rows)
        position = rows[-1].id
    return count


def read_and_parse(store: EventsourcingStore, head: int) -> int:
    count = position = 0
    while position < head and (rows := store.raw_events(position, PAGE, head)):
        for row in rows:
            json.loads(row.state)
        count += len(rows)
        position = rows[-1].id
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    with scratch_database("verify_bench") as url:
        store = build_store(Settings(database_url=url, max_workers=1))
        try:
            print(f"filling {args.events} events through the command handler ...", flush=True)
            head, fill_seconds = timed(lambda: fill_to(store, args.events))
            print(f"  {head} events in {fill_seconds:.0f}s", flush=True)
            auditor = build_auditor(store)
            sealed, seal_seconds = timed(
                lambda: len(Checkpointer(store, auditor.checkpoints).seal())
            )

            rates: dict[str, list[float]] = {"verify": [], "read": [], "parse": []}
            seconds: dict[str, list[float]] = {"verify": [], "read": [], "parse": []}
            for round_ in range(args.repeat):
                for name, action in (
                    ("read", lambda: read_only(store, head)),
                    ("parse", lambda: read_and_parse(store, head)),
                    ("verify", lambda: _verified(auditor.verify_range(), head)),
                ):
                    count, elapsed = timed(action)
                    assert count == head, f"{name} saw {count} of {head} events"
                    rates[name].append(count / elapsed)
                    seconds[name].append(elapsed)
                print(f"  round {round_ + 1}: verify {seconds['verify'][-1]:.1f}s", flush=True)
        finally:
            store.close()

    verify_rate, read_rate, parse_rate = (median(rates[n]) for n in ("verify", "read", "parse"))
    rows = [
        (
            f"verify {head:,} events (s)",
            f"{median(seconds['verify']):.1f}",
            f"raw read {median(seconds['read']):.1f}",
            f"{median(seconds['verify']) / median(seconds['read']):.1f}x the read",
        ),
        (
            "verify events/s",
            f"{verify_rate:,.0f}",
            f"raw read {read_rate:,.0f}",
            f"{verify_rate / read_rate:.2f}",
        ),
        (
            "verify events/s",
            f"{verify_rate:,.0f}",
            f"read + json.loads {parse_rate:,.0f}",
            f"{verify_rate / parse_rate:.2f}",
        ),
        (
            "seal checkpoints (once, events/s)",
            f"{head / seal_seconds:,.0f}",
            f"{sealed} checkpoints",
            "",
        ),
    ]
    print_table(f"verify benchmark ({args.repeat} rounds, medians; PostgreSQL)", rows)
    path = write_json(
        "verify",
        {
            "events": head,
            "repeat": args.repeat,
            "fill_seconds": fill_seconds,
            "seal_seconds": seal_seconds,
            "checkpoints": sealed,
            "rates": rates,
            "seconds": seconds,
        },
    )
    print(f"\nraw figures: {path}")
    return 0


def _verified(report: Report, head: int) -> int:
    if not report.ok or report.events != head:
        raise AssertionError(f"verify of {head} events: {report.summary()}")
    return report.events


if __name__ == "__main__":
    sys.exit(main())

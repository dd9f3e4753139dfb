"""The auditor's commands: ``ledger verify``, ``ledger export``, ``ledger replay``, ``ledger checkpoint``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from services.audit.chain import Report
from services.audit.checkpoints import Checkpointer
from services.audit.replay import position_as_of, replay, replay_url
from services.audit.service import Auditor, verify_lines
from services.bootstrap import build_auditor, build_store
from services.ledger.domain.errors import CaseNotFound
from services.ledger.infrastructure.store import EventsourcingStore
from services.progress import Progress
from services.projector.credit import POLICIES
from services.projector.database import ReadModelDatabase
from services.projector.queries import OwnershipQueries
from services.settings import Settings

SettingsOf = Callable[[argparse.Namespace], Settings]
BROKEN = 1  # exit status of a verification that found a break
USAGE = 2  # exit status for a request that cannot be answered (unknown case, bad range)


def parse_range(text: str) -> tuple[int, int | None]:
    """``A..B`` (both inclusive), ``A..`` (to the end) or ``N`` (one position)."""
    first, sep, last = text.partition("..")
    try:
        start = int(first) if first else 1
        end = (int(last) if last else None) if sep else start
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a range of positions: {text!r} (use A..B)") from None
    if start < 1 or (end is not None and end < start):
        raise argparse.ArgumentTypeError(f"not a range of positions: {text!r} (1 <= A <= B)")
    return start, end


def parse_moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a time zone (e.g. Z) with {text!r}")
    return moment.astimezone(UTC)


@contextmanager
def _auditor(settings: Settings) -> Iterator[tuple[EventsourcingStore, Auditor]]:
    store = build_store(settings)
    try:
        yield store, build_auditor(store)
    finally:
        store.close()


def _print_report(report: Report, out: TextIO) -> int:
    for broken in report.breaks:
        out.write(f"BREAK {broken.describe()}\n")
    if report.break_count > len(report.breaks):
        out.write(f"... and {report.break_count - len(report.breaks)} more breaks\n")
    out.write(report.summary() + "\n")
    return 0 if report.ok else BROKEN


def verify(args: argparse.Namespace, settings_of: SettingsOf) -> int:
    if args.file:
        with Path(args.file).open(encoding="utf-8") as lines:
            return _print_report(verify_lines(lines, scope=f"export {args.file}"), sys.stdout)
    with _auditor(settings_of(args)) as (store, auditor):
        if args.case:
            try:
                report = auditor.verify_case(args.case)
            except CaseNotFound as missing:
                print(missing, file=sys.stderr)
                return USAGE
        else:
            first, last = args.range or (1, None)
            bar = Progress(last or store.max_position(), "verify", unit="events")
            report = auditor.verify_range(first, last, progress=bar)
            bar.finish()
        return _print_report(report, sys.stdout)


def export(args: argparse.Namespace, settings_of: SettingsOf) -> int:
    with _auditor(settings_of(args)) as (_store, auditor):
        lines: Iterable[str]
        if args.case:
            try:
                lines = list(auditor.export_case(args.case))  # one case: small, and checked first
            except CaseNotFound as missing:
                print(missing, file=sys.stderr)
                return USAGE
        else:
            lines = auditor.export_range(*args.range)  # streamed: a range may be the whole ledger
        if args.output:
            with Path(args.output).open("w", encoding="utf-8") as out:
                count = _write_lines(lines, out)
        else:
            count = _write_lines(lines, sys.stdout)
        print(f"exported {count} events", file=sys.stderr)
    return 0


def _write_lines(lines: Iterable[str], out: TextIO) -> int:
    count = 0
    for line in lines:
        out.write(line + "\n")
        count += 1
    return count


def checkpoint(args: argparse.Namespace, settings_of: SettingsOf) -> int:
    with _auditor(settings_of(args)) as (store, auditor):
        written = Checkpointer(store, auditor.checkpoints).seal()
    for sealed in written:
        print(f"checkpoint at position {sealed.position}: {sealed.global_hash}")
    print(f"{len(written)} checkpoints written")
    return 0


def replay_command(args: argparse.Namespace, settings_of: SettingsOf) -> int:
    settings = settings_of(args)
    store = build_store(settings)
    try:
        position = args.position if args.position is not None else position_as_of(store, args.as_of)
        head = store.max_position()
        if position > head:
            print(f"position {position} is beyond the ledger's end ({head})", file=sys.stderr)
            return USAGE
        url = args.into or replay_url(settings.resolved_readmodel_url(), position)
        target = ReadModelDatabase(url)
        try:
            bar = Progress(position, "replay", unit="events")
            started = time.monotonic()
            reached = replay(
                store, target, list(POLICIES.values()), position, settings.projector_batch_size, bar
            )
            bar.finish()
            print(
                f"replayed positions 1..{reached} into {url} in {time.monotonic() - started:.1f}s"
            )
            if args.owner_of:
                _print_owner(OwnershipQueries(target, clock=lambda: datetime.now(UTC)), args)
        finally:
            target.close()
    finally:
        store.close()
    return 0


def _print_owner(queries: OwnershipQueries, args: argparse.Namespace) -> None:
    at = args.at or datetime.now(UTC)
    try:
        owner = queries.owner_at(args.owner_of, at)
    except CaseNotFound as missing:
        print(missing)
        return
    helpers = ", ".join(f"{p.agent_id} ({p.role})" for p in owner.participants) or "none"
    print(
        f"owner of {args.owner_of} at {at.isoformat()}: agent {owner.agent_id or '-'}, "
        f"group {owner.group_id or '-'}, tier {owner.tier or '-'}; swarm: {helpers}"
    )


def register(
    sub: Any,
    with_database: Callable[[argparse.ArgumentParser], argparse.ArgumentParser],
    settings_of: SettingsOf,
) -> None:
    """Add the auditor's sub-commands to the ``ledger`` parser."""

    def small_pool(args: argparse.Namespace) -> Settings:
        # One reader at a time: two connections, not one per gRPC worker.
        return settings_of(args).model_copy(update={"max_workers": 1})

    def bound(run: Callable[[argparse.Namespace, SettingsOf], int]) -> Callable[..., int]:
        return lambda args: run(args, small_pool)

    verify_parser = with_database(
        sub.add_parser(
            "verify",
            help="recompute the hash chains; exit 1 on any break",
            description="Checks every case's hash chain and the global order against its "
            "checkpoints, and names each break (case, version, position, expected vs found).",
        )
    )
    scope = verify_parser.add_mutually_exclusive_group()
    scope.add_argument("--case", help="verify one case")
    scope.add_argument("--range", type=parse_range, help="positions A..B (default: everything)")
    scope.add_argument("--file", help="verify an export (JSON Lines) offline, without a database")
    verify_parser.set_defaults(run=bound(verify))

    export_parser = with_database(
        sub.add_parser("export", help="write events with their hashes as JSON Lines")
    )
    what = export_parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--case", help="every event of one case")
    what.add_argument("--range", type=parse_range, help="positions A..B")
    export_parser.add_argument("--output", help="file to write (default: standard output)")
    export_parser.set_defaults(run=bound(export))

    checkpoint_parser = with_database(
        sub.add_parser("checkpoint", help="seal the global hash over everything committed so far")
    )
    checkpoint_parser.set_defaults(run=bound(checkpoint))

    replay_parser = with_database(
        sub.add_parser(
            "replay",
            help="rebuild every read model as of a position or time into a separate database",
        )
    )
    until = replay_parser.add_mutually_exclusive_group(required=True)
    until.add_argument("--position", type=int, help="replay positions 1..N")
    until.add_argument(
        "--as-of", type=parse_moment, help="replay what was recorded up to this time (ISO 8601)"
    )
    replay_parser.add_argument(
        "--into",
        help="read-model URL to fill (default: beside the live read models, suffixed _replay_N)",
    )
    replay_parser.add_argument("--owner-of", help="then print who owned this case ...")
    replay_parser.add_argument("--at", type=parse_moment, help="... at this time (default: now)")
    replay_parser.set_defaults(run=bound(replay_command))

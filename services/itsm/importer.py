"""Import a log: read → plan commands per case → send them through the ledger's write path.

An XES log streams: a trace holds its whole case, so each case's commands go to the sink as soon
as its trace is read, and the writes overlap the parse (``plan.streamed_commands``; the same
commands in the same order as planning the whole file first). A CSV log is planned whole first:
its rows need not come grouped by case.

Two ways in, chosen by the caller: ``InProcessSink`` runs the application's command handler in
this process (the same ``execute_batch`` the server runs), ``GrpcSink`` streams the commands to a
ledger server's ``ImportEvents``. Either way every refusal is counted by its reason (the
``ErrorInfo`` reason, else the status code), never dropped silently.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from google.rpc import code_pb2, error_details_pb2, status_pb2

from ownership.v1 import ledger_pb2 as pb
from ownership.v1 import ledger_pb2_grpc
from services.itsm.mapping import ColumnMapping
from services.itsm.plan import (
    PlanSummary,
    case_commands,
    group_by_case,
    source_rows,
    streamed_commands,
)
from services.itsm.readers import ReadShare, read_rows, reads_as_csv
from services.ledger.api import rendering
from services.ledger.api.status import status_for
from services.ledger.application import commands as c
from services.ledger.application.handler import CaseCommandHandler
from services.ledger.application.results import CommandResult
from services.progress import Progress


@dataclass
class Sent:
    accepted: int = 0
    replayed: int = 0
    events_recorded: int = 0
    last_position: int = 0
    refused: Counter[str] = field(default_factory=Counter)

    def result(self, result: CommandResult) -> None:
        if result.replayed:
            self.replayed += 1
        else:
            self.accepted += 1
            self.events_recorded += result.events_recorded
        self.last_position = max(self.last_position, result.position)


def refusal_reason(status: status_pb2.Status) -> str:
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Is(info.DESCRIPTOR) and detail.Unpack(info):
            return str(info.reason)
    return str(code_pb2.Code.Name(status.code))


class CommandSink(Protocol):
    def send(self, commands: Iterable[c.Command], progress: Progress) -> Sent: ...


def _parts(commands: Iterable[c.Command], size: int) -> Iterator[list[c.Command]]:
    it = iter(commands)
    while part := list(itertools.islice(it, size)):
        yield part


class InProcessSink:
    """The application handler in this process, in large batches (one transaction each)."""

    def __init__(
        self,
        handler: CaseCommandHandler,
        batch: int = 2000,
        after_batch: Callable[[], None] | None = None,
    ) -> None:
        self._handler = handler
        self._batch = batch
        self._after_batch = after_batch  # e.g. the collector's pacing (gcpacing)

    def send(self, commands: Iterable[c.Command], progress: Progress) -> Sent:
        sent = Sent()
        for part in _parts(commands, self._batch):
            for outcome in self._handler.execute_import(part):
                if isinstance(outcome, CommandResult):
                    sent.result(outcome)
                else:
                    sent.refused[refusal_reason(status_for(outcome))] += 1
            progress.advance(len(part))
            if self._after_batch is not None:
                self._after_batch()
        return sent


class GrpcSink:
    """A ledger server's ``ImportEvents`` stream."""

    def __init__(self, stub: ledger_pb2_grpc.LedgerServiceStub, message_size: int = 500) -> None:
        self._stub = stub
        self._message_size = message_size

    def send(self, commands: Iterable[c.Command], progress: Progress) -> Sent:
        def requests() -> Iterator[pb.ImportEventsRequest]:
            for part in _parts(commands, self._message_size):
                yield pb.ImportEventsRequest(commands=[rendering.batch_command(x) for x in part])
                progress.advance(len(part))

        response = self._stub.ImportEvents(requests())
        sent = Sent(
            accepted=response.accepted,
            replayed=response.replayed,
            events_recorded=response.events_recorded,
            last_position=response.last_position,
        )
        for refusal in response.refusals:
            sent.refused[refusal_reason(refusal.error)] += 1
        return sent


@dataclass
class ImportReport:
    path: str
    format: str
    plan: PlanSummary
    commands: int
    sent: Sent
    read_seconds: float
    send_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "rows_read": self.plan.rows,
            "cases": self.plan.cases,
            "rows_imported": self.plan.rows_planned,
            "rows_not_imported_or_kept_as_activity": dict(sorted(self.plan.noise.items())),
            "commands": self.commands,
            "accepted": self.sent.accepted,
            "replayed": self.sent.replayed,
            "refused": dict(sorted(self.sent.refused.items())),
            "events_recorded": self.sent.events_recorded,
            "last_position": self.sent.last_position,
            "read_seconds": round(self.read_seconds, 3),
            "send_seconds": round(self.send_seconds, 3),
        }


def plan_commands(path: Path, mapping: ColumnMapping) -> tuple[list[c.Command], PlanSummary]:
    """The whole file's commands, case after case (cases in order of first appearance)."""
    summary = PlanSummary()
    cases = group_by_case(source_rows(read_rows(path, mapping.reader), mapping, summary))
    commands: list[c.Command] = []
    for case_id, rows in cases.items():
        commands += case_commands(case_id, rows, mapping, summary)
    return commands, summary


class _Stream:
    """The streamed plan as one iterator of commands; it also keeps the progress's total an
    estimate (commands so far ÷ share of the file read) and the time spent reading+planning."""

    def __init__(self, path: Path, mapping: ColumnMapping, progress: Progress) -> None:
        self.summary = PlanSummary()
        self.commands = 0
        self.seconds = 0.0
        self._share = ReadShare()
        rows = source_rows(read_rows(path, mapping.reader, self._share), mapping, self.summary)
        self._cases = streamed_commands(rows, mapping, self.summary)
        self._progress = progress

    def __iter__(self) -> Iterator[c.Command]:
        while True:
            started = time.monotonic()
            case = next(self._cases, None)
            self.seconds += time.monotonic() - started
            if case is None:
                self._progress.total = self.commands
                return
            self.commands += len(case)
            share = self._share()
            if share > 0:
                self._progress.total = max(self.commands, round(self.commands / share))
            yield from case


def import_log(
    path: Path,
    mapping: ColumnMapping,
    sink: CommandSink,
    progress_label: str = "import",
    whole_file: bool = False,
) -> ImportReport:
    """Plan and send a log's commands. ``whole_file``: plan the whole file before the first
    write even where it could stream (an XES log whose cases come back in later traces)."""
    started = time.monotonic()
    if whole_file or reads_as_csv(path, mapping.reader):
        commands, summary = plan_commands(path, mapping)
        planned = time.monotonic()
        progress = Progress(len(commands), progress_label)
        sent = sink.send(commands, progress)
        progress.finish()
        return ImportReport(
            str(path), mapping.name, summary, len(commands), sent, planned - started,
            time.monotonic() - planned,
        )  # fmt: skip
    progress = Progress(0, progress_label)
    stream = _Stream(path, mapping, progress)
    sent = sink.send(stream, progress)
    progress.finish()
    elapsed = time.monotonic() - started
    return ImportReport(
        str(path), mapping.name, stream.summary, stream.commands, sent, stream.seconds,
        elapsed - stream.seconds,
    )  # fmt: skip

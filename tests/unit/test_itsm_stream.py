"""The streamed plan (trace by trace, written while the file is still read) equals the plan of the
whole file read first: the same commands, ids and order, and the same counts."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from services.itsm.importer import Sent, import_log, plan_commands
from services.itsm.mapping import BPIC13, HELPDESK, ColumnMapping
from services.itsm.plan import PlanSummary, RowsOutOfOrder, source_rows, streamed_commands
from services.itsm.readers import ReadShare, read_rows
from services.ledger.application import commands as c
from services.progress import Progress

SLICES = Path(__file__).resolve().parent.parent / "data" / "itsm"


def streamed(path: Path, mapping: ColumnMapping) -> tuple[list[c.Command], PlanSummary]:
    summary = PlanSummary()
    rows = source_rows(read_rows(path, mapping.reader), mapping, summary)
    return [x for case in streamed_commands(rows, mapping, summary) for x in case], summary


@pytest.mark.parametrize(
    ("path", "mapping"), [(SLICES / "bpic13.xes.gz", BPIC13), (SLICES / "helpdesk.xes", HELPDESK)]
)
def test_the_streamed_plan_of_a_real_slice_is_the_whole_file_plan(
    path: Path, mapping: ColumnMapping
) -> None:
    whole, whole_summary = plan_commands(path, mapping)
    stream, stream_summary = streamed(path, mapping)
    assert len(whole) > 100
    assert stream == whole  # every field of every command, in the same order
    assert stream_summary == whole_summary


def xes(*traces: tuple[str, list[tuple[str, str]]]) -> str:
    """A log of ``(case, [(time, activity), ...])`` traces, all handled by one owner."""
    body = "".join(
        f'<trace><string key="concept:name" value="{case}"/>'
        + "".join(
            f'<event><string key="concept:name" value="{activity}"/>'
            '<string key="lifecycle:transition" value="In Progress"/>'
            '<string key="org:resource" value="Ann"/><string key="org:group" value="G1"/>'
            f'<date key="time:timestamp" value="{time}"/></event>'
            for time, activity in events
        )
        + "</trace>"
        for case, events in traces
    )
    return f'<?xml version="1.0"?><log xmlns="http://www.xes-standard.org/">{body}</log>'


def test_a_case_found_again_later_continues_as_in_the_whole_file_plan(tmp_path: Path) -> None:
    path = tmp_path / "log.xes"
    path.write_text(
        xes(
            ("A", [("2012-01-01T10:00:00+00:00", "Queued"), ("2012-01-01T11:00:00+00:00", "Accepted")]),
            ("B", [("2012-01-01T10:30:00+00:00", "Queued")]),
            ("A", [("2012-01-01T11:00:00+00:00", "Accepted"), ("2012-01-02T09:00:00+00:00", "Accepted")]),
        )
    )  # fmt: skip
    whole, whole_summary = plan_commands(path, BPIC13)
    stream, stream_summary = streamed(path, BPIC13)
    by_case = sorted(stream, key=lambda x: x.case_id)  # stable: each case keeps its order
    assert by_case == sorted(whole, key=lambda x: x.case_id)
    assert stream_summary == whole_summary and whole_summary.cases == 2


def test_a_case_found_again_with_earlier_rows_stops_the_stream(tmp_path: Path) -> None:
    path = tmp_path / "log.xes"
    path.write_text(
        xes(
            ("A", [("2012-01-01T10:00:00+00:00", "Queued"), ("2012-01-01T11:00:00+00:00", "Accepted")]),
            ("B", [("2012-01-01T10:30:00+00:00", "Queued")]),
            ("A", [("2012-01-01T10:30:00+00:00", "Accepted")]),
        )
    )  # fmt: skip
    with pytest.raises(RowsOutOfOrder, match="'A'"):
        streamed(path, BPIC13)
    whole, _ = plan_commands(path, BPIC13)  # the whole file still plans it
    assert [x.kind for x in whole if x.case_id == "A"] == [
        "Assign",
        "RecordActivity",
        "RecordActivity",
    ]


class Recorded:
    """A sink that keeps what it is sent, in parts of three, advancing the progress."""

    def __init__(self) -> None:
        self.commands: list[c.Command] = []
        self.totals: list[int] = []

    def send(self, commands: object, progress: Progress) -> Sent:
        for command in commands:  # type: ignore[attr-defined]
            self.commands.append(command)
            if len(self.commands) % 3 == 0:
                progress.advance(3)
                self.totals.append(progress.total)
        return Sent(accepted=len(self.commands))


def test_import_log_streams_an_xes_log_and_ends_with_the_exact_total() -> None:
    path = SLICES / "bpic13.xes.gz"
    stream, whole = Recorded(), Recorded()
    streamed_report = import_log(path, BPIC13, stream)
    whole_report = import_log(path, BPIC13, whole, whole_file=True)
    assert stream.commands == whole.commands
    assert streamed_report.commands == whole_report.commands == len(whole.commands)
    assert streamed_report.as_dict()["rows_imported"] == whole_report.as_dict()["rows_imported"]
    assert set(whole.totals) == {len(whole.commands)}  # known before the first write
    assert all(total >= 3 for total in stream.totals)  # an estimate while the file is read


def test_the_read_share_follows_the_file() -> None:
    share = ReadShare()
    assert share() == 0.0
    rows = read_rows(SLICES / "bpic13.xes.gz", "xes", share)
    next(rows)
    assert 0.0 < share() <= 1.0
    assert sum(1 for _ in rows) > 0 and share() == 1.0


def test_progress_lines_show_the_estimated_total() -> None:
    out = io.StringIO()
    progress = Progress(0, "import", stream=out, every_seconds=0.0)
    progress.total = 200
    progress.advance(50)
    assert "50/200 (25%)" in out.getvalue()

"""The one progress reporter that import, verify and replay share."""

from __future__ import annotations

import io

from services.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_it_writes_whole_lines_with_rate_and_share() -> None:
    out = io.StringIO()
    progress = Progress(200, "verify", unit="events", stream=out, every_seconds=0.0)
    progress.advance(50)
    progress(150)  # verify and replay report the absolute count
    progress.finish()
    lines = out.getvalue().splitlines()
    assert [line.split()[1:3] for line in lines] == [
        ["50/200", "(25%)"],
        ["150/200", "(75%)"],
        ["150/200", "(75%)"],
    ]
    assert all(line.startswith("verify ") and " events/s ETA " in line for line in lines)
    assert progress.done == 150


def test_off_a_terminal_it_stays_quiet_between_intervals() -> None:
    out = io.StringIO()
    progress = Progress(10, "import", stream=out, every_seconds=3600.0)
    for _ in range(10):
        progress.advance(1)
    assert out.getvalue() == ""
    progress.finish()
    assert out.getvalue().startswith("import 10/10 (100%) ")


def test_on_a_terminal_it_redraws_one_bar_and_ends_the_line_when_finished() -> None:
    out = _Terminal()
    progress = Progress(4, "replay", unit="events", stream=out)
    progress.finish()
    progress.reach(4)
    progress.finish()
    text = out.getvalue()
    assert text.count("\r[") == 2
    assert "[" + "#" * 30 + "]" in text
    assert text.endswith("\x1b[K\n")
    empty, full = text.split("\n")[:2]
    assert empty.startswith("\r[" + " " * 30 + "] replay 0/4 (0%)")
    assert full.startswith("\r[" + "#" * 30 + "] replay 4/4 (100%)")

"""Real ITSM log slices imported through the ledger: the read models' figures equal an independent
computation from the raw rows, exactly; importing the same file again adds nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.bootstrap import open_import_target
from services.cli import main
from services.itsm.importer import ImportReport, import_log
from services.itsm.mapping import PRESETS
from services.projector.database import ReadModelDatabase
from services.reports.figures import ownership_figures
from services.settings import Settings
from tests.integration import itsm_reference

SLICES = Path(__file__).resolve().parent.parent / "data" / "itsm"
LOGS = {
    "bpic13": SLICES / "bpic13.xes.gz",
    "helpdesk": SLICES / "helpdesk.xes",
    "servicenow": SLICES / "servicenow.csv",
    "bpic14": SLICES / "bpic14.csv",
}


def imported(
    database_url: str, dataset: str, via: str = "inprocess"
) -> tuple[ImportReport, dict[str, Any]]:
    settings = Settings(database_url=database_url)
    with open_import_target(settings, via, None) as target:
        report = import_log(LOGS[dataset], PRESETS[dataset], target.sink)
        assert target.make_current(report.sent.last_position)
    readmodels = ReadModelDatabase(settings.resolved_readmodel_url())
    try:
        return report, ownership_figures(readmodels, top_n=None)
    finally:
        readmodels.close()


def assert_matches_reference(dataset: str, figures: dict[str, Any]) -> None:
    expected = itsm_reference.figures(dataset, LOGS[dataset])
    assert expected["cases"] > 50 and expected["events"] > expected["cases"]
    for key, value in expected.items():
        assert figures[key] == value, key


@pytest.mark.parametrize("dataset", sorted(LOGS))
def test_read_model_figures_equal_an_independent_computation_on_postgres(
    postgres_url: str, dataset: str
) -> None:
    report, figures = imported(postgres_url, dataset)
    assert not report.sent.refused
    assert report.sent.events_recorded == figures["events"]
    assert_matches_reference(dataset, figures)


@pytest.mark.parametrize("dataset", ["helpdesk", "servicenow"])
def test_read_model_figures_equal_an_independent_computation_on_sqlite(
    sqlite_url: str, dataset: str
) -> None:
    _, figures = imported(sqlite_url, dataset)
    assert_matches_reference(dataset, figures)


def test_importing_the_same_file_again_adds_nothing(postgres_url: str) -> None:
    first, figures = imported(postgres_url, "servicenow")
    again, figures_again = imported(postgres_url, "servicenow")
    assert first.sent.accepted == first.commands > 0
    assert (again.sent.accepted, again.sent.events_recorded, again.sent.refused) == (0, 0, {})
    assert again.sent.replayed == first.commands
    assert again.sent.last_position == first.sent.last_position
    assert figures_again == figures


def test_the_servicenow_counter_check_is_computed(postgres_url: str) -> None:
    _, figures = imported(postgres_url, "servicenow")
    share = figures["reassignment_count_match_share"]
    assert share is not None and 0.5 < share <= 1.0


def test_the_cli_imports_and_writes_the_json_and_html_report(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ledger.sqlite"
    assert main(["import", "bpic13", str(LOGS["bpic13"]), "--database-url", url]) == 0
    out_json, out_html = tmp_path / "figures.json", tmp_path / "report.html"
    assert (
        main(["report", "--database-url", url, "--json", str(out_json), "--html", str(out_html)])
        == 0
    )
    written = json.loads(out_json.read_text())
    expected = itsm_reference.figures("bpic13", LOGS["bpic13"])
    assert written["top_pairs_group"] == expected["top_pairs_group"][:10]
    assert written["case_duration_s"] == expected["case_duration_s"]
    page = out_html.read_text()
    assert page.count('src="data:image/png;base64,') == 4
    assert f"{expected['cases']} cases" in page

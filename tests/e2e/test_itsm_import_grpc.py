"""A real log slice imported through a real gRPC server's ImportEvents stream (port 0)."""

from __future__ import annotations

from tests.integration.itsm_reference import figures as reference_figures
from tests.integration.test_itsm_figures import LOGS, imported


def test_grpc_import_gives_the_independent_figures_and_shares_ids_with_the_inprocess_path(
    postgres_url: str,
) -> None:
    report, figures = imported(postgres_url, "bpic14", via="grpc")
    assert report.sent.accepted == report.commands > 0 and not report.sent.refused
    expected = reference_figures("bpic14", LOGS["bpic14"])
    assert {key: figures[key] for key in expected} == expected

    again, figures_again = imported(postgres_url, "bpic14", via="inprocess")
    assert (again.sent.accepted, again.sent.replayed) == (0, report.commands)
    assert figures_again == figures


def test_an_xes_log_streams_through_grpc_and_importing_it_again_adds_nothing(
    postgres_url: str,
) -> None:
    report, figures = imported(postgres_url, "bpic13", via="grpc")  # streamed, trace by trace
    assert report.sent.accepted == report.commands > 0 and not report.sent.refused
    expected = reference_figures("bpic13", LOGS["bpic13"])
    assert {key: figures[key] for key in expected} == expected

    again, figures_again = imported(postgres_url, "bpic13", via="grpc")
    assert (again.sent.accepted, again.sent.replayed, again.sent.refused) == (
        0,
        report.commands,
        {},
    )
    assert figures_again == figures

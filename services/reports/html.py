"""The HTML ownership report: the JSON figures and four plots, in one self-contained page.

Plots are drawn with matplotlib (Agg, no display) from the read models and embedded as PNG.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from services.projector.database import ReadModelDatabase
from services.projector.readmodels import table

DAY_S = 86_400
TOP_GROUPS = 10


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _durations_by_group(readmodels: ReadModelDatabase) -> dict[str, list[float]]:
    """Case durations in days, by the group owning each case at its last event."""
    with readmodels.transaction() as cursor:
        cursor.execute(
            f"SELECT group_id, last_event_us - opened_us FROM {table('current')}"  # noqa: S608
        )
        rows = cursor.fetchall()
    by_group: dict[str, list[float]] = {}
    for group_id, micros in rows:
        by_group.setdefault(group_id or "(no group)", []).append(int(micros) / 1e6 / DAY_S)
    ranked = sorted(by_group, key=lambda g: (-len(by_group[g]), g))[:TOP_GROUPS]
    return {g: by_group[g] for g in ranked}


def _group_edges(readmodels: ReadModelDatabase) -> Counter[tuple[str, str]]:
    with readmodels.transaction() as cursor:
        cursor.execute(
            f"SELECT from_holder, to_holder, SUM(n) FROM {table('handover')} "  # noqa: S608
            "WHERE level = 'group' GROUP BY from_holder, to_holder"
        )
        return Counter({(a, b): int(n) for a, b, n in cursor.fetchall()})


def duration_plot(readmodels: ReadModelDatabase) -> Figure:
    by_group = _durations_by_group(readmodels)
    figure, axes = plt.subplots(figsize=(9, 4.5))
    if by_group:
        axes.boxplot(list(by_group.values()), showfliers=False)
        axes.set_xticks(range(1, len(by_group) + 1), list(by_group), rotation=30, ha="right")
    axes.set_ylabel("case duration (days)")
    axes.set_title(f"Case duration by owning group (top {TOP_GROUPS} groups by cases)")
    return figure


def network_plot(readmodels: ReadModelDatabase) -> Figure:
    edges = _group_edges(readmodels)
    weight: Counter[str] = Counter()
    for (a, b), n in edges.items():
        weight[a] += n
        weight[b] += n
    nodes = [g for g, _ in sorted(weight.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_GROUPS]]
    place = {
        g: (math.cos(2 * math.pi * i / len(nodes)), math.sin(2 * math.pi * i / len(nodes)))
        for i, g in enumerate(nodes)
    }
    figure, axes = plt.subplots(figsize=(7, 7))
    shown = {pair: n for pair, n in edges.items() if pair[0] in place and pair[1] in place}
    heaviest = max(shown.values(), default=1)
    for (a, b), n in sorted(shown.items(), key=lambda kv: kv[1]):
        axes.annotate(
            "",
            xy=place[b],
            xytext=place[a],
            arrowprops={
                "arrowstyle": "-|>",
                "lw": 0.5 + 5 * n / heaviest,
                "alpha": 0.35 + 0.6 * n / heaviest,
                "connectionstyle": "arc3,rad=0.15",
                "shrinkA": 14,
                "shrinkB": 14,
            },
        )
    for g, (x, y) in place.items():
        axes.scatter([x], [y], s=200 + 1500 * weight[g] / max(weight.values()), zorder=3)
        axes.text(x * 1.17, y * 1.17, g, ha="center", va="center", fontsize=9)
    axes.set_xlim(-1.4, 1.4)
    axes.set_ylim(-1.4, 1.4)
    axes.set_axis_off()
    axes.set_title(f"Handover network of the top {len(nodes)} groups (arrow width = handovers)")
    return figure


def changes_plot(figures: dict[str, Any]) -> Figure:
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, level in zip(axes, ("person", "group"), strict=True):
        distribution = figures[f"changes_per_case_{level}"]["distribution"]
        ax.bar([int(k) for k in distribution], list(distribution.values()))
        ax.set_xlabel(f"{level} handovers in the case")
        ax.set_ylabel("cases")
        ax.set_title(
            f"Handovers per case ({level}), mean {figures[f'changes_per_case_{level}']['mean']}"
        )
    return figure


def hands_plot(figures: dict[str, Any]) -> Figure:
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, level in zip(axes, ("person", "group"), strict=True):
        hands = figures[f"time_in_hands_{level}_s"]
        names = list(hands)[::-1]
        ax.barh(names, [hands[n] / DAY_S for n in names])
        ax.set_xlabel("days in hands")
        ax.set_title(f"Time in hands, top {len(names)} ({level})")
    return figure


def write_html_report(readmodels: ReadModelDatabase, figures: dict[str, Any], path: Path) -> None:
    plots = [
        ("Case duration per group", _png(duration_plot(readmodels))),
        ("Handover network of the top groups", _png(network_plot(readmodels))),
        ("Handovers per case", _png(changes_plot(figures))),
        ("Time in hands", _png(hands_plot(figures))),
    ]
    sections = "\n".join(
        f'<h2>{html.escape(title)}</h2><img alt="{html.escape(title)}" '
        f'src="data:image/png;base64,{data}">'
        for title, data in plots
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Ownership report</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "img{max-width:100%}pre{background:#f4f4f4;padding:1em;overflow:auto}</style>"
        "</head><body><h1>Ownership report</h1>"
        f"<p>{figures['cases']} cases, {figures['events']} events, "
        f"{figures['handovers_person']} person handovers, "
        f"{figures['handovers_group']} group handovers.</p>"
        f"{sections}<h2>Figures (JSON)</h2><pre>"
        f"{html.escape(json.dumps(figures, indent=2))}</pre></body></html>\n"
    )
    path.write_text(page, encoding="utf-8")

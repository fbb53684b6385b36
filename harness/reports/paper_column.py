"""The paper column: for a run made from a preset (``--preset``) on a model the preset has figures for, the
published figure beside this run's (with its 95% bootstrap interval), the difference, whether it lies within
the preset's stated tolerance, and the options where the run departed from the preset."""

from __future__ import annotations

import html
from typing import Any

from harness.presets.catalog import model_key, presets
from harness.reports.finished_runs import FinishedRun
from harness.scoring.statistics import bootstrap_mean

COLUMNS = ("run", "preset", "source", "model", "metric", "published", "this run [95% CI]", "difference",
           "within tolerance", "deviations")


def deviations_text(config: dict[str, Any]) -> str:
    deviations = config.get("preset_deviations") or {}
    return "; ".join(f"{name} {entry.get('run')!r} (preset {entry.get('preset')!r})" if isinstance(entry, dict)
                     else f"{name}" for name, entry in deviations.items()) or "none"


def paper_rows(run: FinishedRun, label: str, seed: int = 0) -> list[dict[str, Any]]:
    """One row per published metric; none when the run used no preset, a preset this harness no longer has,
    or a model the preset has no figure for."""
    config = run.summary.get("config") or {}
    chosen = presets().get(str(config.get("preset")))
    figures = chosen.figures_for(run.model) if chosen else {}
    rows = []
    for metric, published in figures.items():
        row: dict[str, Any] = {"run": label, "preset": chosen.name, "source": f"{chosen.paper}, {chosen.source}",
                               "model": model_key(run.model), "metric": metric, "published": float(published),
                               "tolerance": chosen.tolerance, "deviations": deviations_text(config),
                               "measured": None, "low": None, "high": None, "difference": None, "within": None}
        values = list(run.per_problem(metric).values())
        if values:
            interval = bootstrap_mean(values, seed=seed)
            measured = 100 * interval.estimate
            row.update(measured=measured, low=100 * interval.low, high=100 * interval.high,
                       difference=measured - published, within=abs(measured - published) <= chosen.tolerance)
        rows.append(row)
    return rows


def cells(row: dict[str, Any]) -> list[str]:
    """A row as the report prints it."""
    if row["measured"] is None:
        shown, difference, within = f"not computed (too few samples per problem for {row['metric']})", "", ""
    else:
        shown = f"{row['measured']:.1f} [{row['low']:.1f}, {row['high']:.1f}]"
        difference = f"{row['difference']:+.1f} points"
        within = f"{'yes' if row['within'] else 'NO'} (±{row['tolerance']:g})"
    return [row["run"], row["preset"], row["source"], str(row["model"]), row["metric"], f"{row['published']:.1f}",
            shown, difference, within, row["deviations"]]


def summary_line(row: dict[str, Any]) -> str:
    """One line per row, for the run browser's header and the runs table's ``paper`` column."""
    _, name, source, model, metric, published, shown, difference, within, deviations = cells(row)
    return (f"paper ({name}, {source}): {model} {metric} published {published}, this run {shown}"
            + (f", {difference}, within tolerance: {within}" if difference else "") + f"; deviations: {deviations}")


def markdown(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    lines = ["## Published figures (runs made with --preset)", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in cells(row)) + " |" for row in rows]
    return lines + [""]


def html_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells(row)) + "</tr>" for row in rows)
    return f"<h2>Published figures (runs made with --preset)</h2><table><tr>{head}</tr>{body}</table>"

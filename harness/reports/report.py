"""``run-benchmark report``: runs side by side, with 95% bootstrap intervals, breakdowns and plots.

Runs are grouped by what makes numbers comparable (suite, samples per task, temperature, top-p, token
budget); different groups get separate tables and plots and are never averaged together. Outputs:
``report.md``, ``report.csv``, a self-contained ``report.html`` (styles and images inline) and PNGs.
"""

from __future__ import annotations

import base64
import html
import logging
import math
from pathlib import Path
from typing import Any

import pandas as pd

from harness.reports import feedback_report as report_feedback
from harness.reports import paper_column
from harness.reports.finished_runs import FinishedRun, distinct_runs, run_labels
from harness.scoring.statistics import bootstrap_mean
from harness.reports.view import write_view

log = logging.getLogger("harness.reports.report")


def _group_label(settings: dict[str, Any]) -> str:
    """Runs are grouped by every setting that makes numbers comparable; the label names them all."""
    shown = [str(settings["suite"])] + [
        f"{name}={str(value)[:8] if name.endswith('sha256') else value}" for name, value in settings.items()
        if name != "suite" and value not in (None, False)]
    return " · ".join(shown)


def report_ks(runs: list[FinishedRun]) -> list[int]:
    """The k values any run computed (pass@1, 10, 100 when n allows them)."""
    return sorted({int(k) for run in runs for k in run.summary.get("ks", [1])})


def runs_table(runs: list[FinishedRun], seed: int, labels: list[str] | None = None) -> pd.DataFrame:
    ks = report_ks(runs)
    rows = []
    for run, label in zip(runs, labels or run_labels(runs)):
        family, variant = run.family()
        timings = run.summary.get("timings") or {}
        row: dict[str, Any] = {"group": _group_label(run.settings), "run": label, "model": run.model,
                               "family": family, "variant": variant, "parameters": run.parameters,
                               "suite": run.suite, "n": run.settings["n"], "temperature": run.settings["temperature"]}
        for k in ks:
            values = list(run.per_problem(f"pass@{k}").values())
            if values:
                interval = bootstrap_mean(values, seed=seed)
                row.update({f"pass@{k}": interval.estimate, f"pass@{k} low": interval.low,
                            f"pass@{k} high": interval.high})
        row["paper"] = " / ".join(paper_column.summary_line(r) for r in paper_column.paper_rows(run, label, seed))
        row["pass rate"] = run.summary["overall"].get("pass_rate")
        tiers = run.summary.get("tiers") or {}
        if "base" in tiers:
            row["base pass@1"] = tiers["base"].get("pass@1")
        row["wall seconds"] = timings.get("wall_seconds", timings.get("total_seconds"))
        row["tokens/s"] = timings.get("tokens_per_second")
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.sort_values(["group", "family", "parameters", "run"], na_position="last").reset_index(drop=True)


def category_table(runs: list[FinishedRun], labels: list[str] | None = None) -> pd.DataFrame:
    data = {label: {cat: entry.get("pass@1") for cat, entry in run.summary.get("per_category", {}).items()}
            for run, label in zip(runs, labels or run_labels(runs))}
    return pd.DataFrame(data).sort_index()


def turn_table(runs: list[FinishedRun], labels: list[str] | None = None) -> pd.DataFrame:
    data = {label: run.summary.get("failures_by_turn") or {} for run, label in zip(runs, labels or run_labels(runs))}
    return pd.DataFrame(data).fillna(0).astype(int)


# (smaller run, bigger run, problems the bigger one solves and the smaller not, and the other way round)
Gains = list[tuple[str, str, list[str], list[str]]]


def size_gains(runs: list[FinishedRun], labels: list[str] | None = None) -> Gains:
    """Within a group and family, for each pair of consecutive sizes: problems the bigger model solves
    (some sample passes) that the smaller does not, and the reverse."""
    out = []
    by_group: dict[tuple, list[tuple[FinishedRun, str]]] = {}
    for run, label in zip(runs, labels or run_labels(runs)):
        by_group.setdefault((_group_label(run.settings), run.family()), []).append((run, label))
    for members in by_group.values():
        ordered = sorted((m for m in members if m[0].parameters), key=lambda m: m[0].parameters)
        for (small, small_label), (big, big_label) in zip(ordered, ordered[1:]):
            solved_small = {p for p, e in small.summary["per_problem"].items() if e["pass_rate"] > 0}
            solved_big = {p for p, e in big.summary["per_problem"].items() if e["pass_rate"] > 0}
            out.append((small_label, big_label, sorted(solved_big - solved_small), sorted(solved_small - solved_big)))
    return out


def size_figure(rows: pd.DataFrame, ks: list[int], group: str):
    """pass@k against parameters (log axis) for one group: a line per family, variant and k, error bars for
    the 95% intervals, the y axis exactly 0-100%, and a legend naming each line's models and sizes."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    figure, axis = plt.subplots(figsize=(8, 5), layout="constrained")
    for (family, variant), line in rows.groupby(["family", "variant"], sort=True):
        line = line.sort_values("parameters")
        models = ", ".join(f"{model} ({_human(size)})" for model, size in zip(line["model"], line["parameters"]))
        for k in ks:
            if f"pass@{k}" not in line or line[f"pass@{k}"].isna().all():
                continue
            estimate = line[f"pass@{k}"] * 100
            errors = [(estimate - line[f"pass@{k} low"] * 100).clip(lower=0),
                      (line[f"pass@{k} high"] * 100 - estimate).clip(lower=0)]
            name = f"{family} {variant}" if variant and variant != "-" else str(family)
            axis.errorbar(line["parameters"], estimate, yerr=errors, marker="o", capsize=4, clip_on=False,
                          label=f"{name} pass@{k}: {models}")
    axis.set_xscale("log")
    axis.set_ylim(0, 100)
    axis.yaxis.set_major_formatter(PercentFormatter(100))
    axis.set_xlabel("parameters")
    axis.set_ylabel("pass@k")
    axis.set_title(f"pass@k by model size (95% CI)\n{group}", fontsize=9)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.14), frameon=False)
    return figure


def category_figure(categories: pd.DataFrame, legend: list[str]):
    """pass@1 per category as horizontal bars (category names written out in full beside their bars), the
    value axis exactly 0-100%, one colour per run, named with its model and size."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    height = 1.2 + 0.22 * len(categories) * max(1, len(categories.columns))
    figure, axis = plt.subplots(figsize=(8, max(3.0, height)), layout="constrained")
    shown = (categories * 100).iloc[::-1]  # the first category at the top
    shown.columns = legend
    shown.plot.barh(ax=axis, width=0.8)
    axis.set_xlim(0, 100)
    axis.xaxis.set_major_formatter(PercentFormatter(100))
    axis.set_xlabel("pass@1")
    axis.set_ylabel("")
    axis.set_title("pass@1 per category")
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.12), frameon=False)
    return figure


def _plots(frame: pd.DataFrame, categories: pd.DataFrame, legend: list[str], ks: list[int], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for index, (group, rows) in enumerate(frame.groupby("group", sort=True)):
        sized = rows[rows["parameters"].notna()]
        if sized.empty:
            continue
        figure = size_figure(sized, ks, group)
        path = out / f"pass_at_k_vs_size_{index + 1}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    if not categories.empty:
        figure = category_figure(categories, legend)
        path = out / "per_category.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    return written


def _format(frame: pd.DataFrame, ks: list[int]) -> pd.DataFrame:
    shown = frame.copy()
    for k in ks:
        if f"pass@{k}" in shown:
            shown[f"pass@{k}"] = [f"{100 * e:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]" if not _nan(e) else ""
                                  for e, lo, hi in zip(shown[f"pass@{k}"], shown[f"pass@{k} low"],
                                                       shown[f"pass@{k} high"])]
            shown = shown.drop(columns=[f"pass@{k} low", f"pass@{k} high"])
    for column in ("pass rate", "base pass@1"):
        if column in shown:
            shown[column] = [f"{100 * v:.1f}%" if not _nan(v) else "" for v in shown[column]]
    shown["parameters"] = [_human(p) for p in shown["parameters"]]
    return shown.drop(columns=["group", "samples"], errors="ignore")


def _nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _human(count: Any) -> str:
    if _nan(count):
        return ""
    count = float(count)
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= size:
            return f"{count / size:.3g}{unit}"
    return str(int(count))


def write_report(runs: list[FinishedRun], out: Path, seed: int = 0) -> list[Path]:
    """The report files. A run given twice (the same folder, or a copy of it) is reported once; a run
    of the same name as another is told apart by its parent folders. Each run's samples are browsable in
    ``view-<n>.html`` beside the report, linked from its tables."""
    runs, repeats = distinct_runs(runs)
    for repeat in repeats:
        log.warning("%s: the same run is given more than once; it is reported once", repeat.directory)
    out.mkdir(parents=True, exist_ok=True)
    labels = run_labels(runs)
    frame = runs_table(runs, seed, labels)
    categories = category_table(runs, labels)
    turns = turn_table(runs, labels)
    gains = size_gains(runs, labels)
    ks = report_ks(runs)
    legend = [label + (f": {run.model}" if run.model != "?" else "")
              + (f" ({_human(run.parameters)})" if run.parameters else "") for run, label in zip(runs, labels)]
    # The views first: a run whose samples cannot be read stops the report before its tables and plots.
    views = {label: write_view([run], out / f"view-{position + 1}.html")
             for position, (run, label) in enumerate(zip(runs, labels)) if run.samples_file.is_file()}
    repair_rounds = report_feedback.rounds_rows(runs, labels, ks)
    plots = _plots(frame, categories, legend, ks, out) + report_feedback.plot(repair_rounds, ks, out)
    frame["samples"] = [views[label].name if label in views else "" for label in frame["run"]]
    frame.to_csv(out / "report.csv", index=False)

    paper = [row for run, label in zip(runs, labels) for row in paper_column.paper_rows(run, label, seed)]
    (out / "report.md").write_text(_markdown(frame, categories, turns, gains, views, plots, ks, repair_rounds, paper),
                                   encoding="utf-8")
    (out / "report.html").write_text(_html(frame, categories, turns, gains, views, plots, ks, paper), encoding="utf-8")
    return [out / "report.md", out / "report.csv", out / "report.html", *plots, *views.values()]


def _markdown(frame: pd.DataFrame, categories: pd.DataFrame, turns: pd.DataFrame, gains: Gains,
              views: dict[str, Path], plots: list[Path], ks: list[int], repair_rounds: list[dict[str, Any]],
              paper: list[dict[str, Any]]) -> str:
    md = ["# Benchmark report", "",
          "pass@k with 95% bootstrap intervals over problems (seeded). Runs with different suites or sampling "
          "settings are in separate groups, never averaged together.", ""]
    for group, rows in frame.groupby("group", sort=True):
        md += [f"## {group}", "", _format(rows, ks).to_markdown(index=False), ""]
    md += paper_column.markdown(paper)
    md += ["## Per category (pass@1)", "", (categories * 100).round(1).to_markdown(), "",
           "## Where failed conversations broke", "", turns.to_markdown(), ""]
    md += report_feedback.markdown(repair_rounds)
    if gains:
        md += ["## What size buys", ""]
        for small, big, won, lost in gains:
            md.append(f"- {big} solves {len(won)} problem(s) that {small} does not"
                      + (f": {', '.join(won[:40])}" if won else "")
                      + (f"; and loses {len(lost)}: {', '.join(lost[:40])}" if lost else ""))
        md.append("")
    if views:
        md += ["## Every sample", "", *[f"- [{label}]({path.name})" for label, path in views.items()], ""]
    md += [f"![{p.stem}]({p.name})" for p in plots]
    return "\n".join(md) + "\n"


def _html(frame: pd.DataFrame, categories: pd.DataFrame, turns: pd.DataFrame, gains: Gains,
          views: dict[str, Path], plots: list[Path], ks: list[int], paper: list[dict[str, Any]]) -> str:
    images = "".join(f'<figure><img alt="{p.stem}" src="data:image/png;base64,'
                     f'{base64.b64encode(p.read_bytes()).decode()}"></figure>' for p in plots)
    sections = "".join(f"<h2>{html.escape(str(group))}</h2>{_format(rows, ks).to_html(index=False, border=0)}"
                       for group, rows in frame.groupby("group", sort=True))
    gain_items = "".join(f"<li>{html.escape(big)} solves {len(won)} problem(s) that {html.escape(small)} does not"
                         f"{': ' + html.escape(', '.join(won[:40])) if won else ''}</li>" for small, big, won, _ in gains)
    view_items = "".join(f'<li><a href="{html.escape(path.name)}">{html.escape(label)}</a></li>'
                         for label, path in views.items())
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Benchmark report</title><style>
body{{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}}
table{{border-collapse:collapse;margin:1em 0;font-size:14px}}th,td{{padding:4px 10px;border-bottom:1px solid #ddd;
text-align:right}}th{{background:#f4f4f4}}td:first-child,th:first-child{{text-align:left}}img{{max-width:100%}}
</style></head><body><h1>Benchmark report</h1><p>pass@k with 95% bootstrap intervals over problems. Groups
differ in suite or sampling settings and are never averaged together.</p>{sections}{paper_column.html_table(paper)}
<h2>Per category (pass@1, %)</h2>{(categories * 100).round(1).to_html(border=0)}
<h2>Where failed conversations broke</h2>{turns.to_html(border=0)}
{'<h2>What size buys</h2><ul>' + gain_items + '</ul>' if gains else ''}
{'<h2>Every sample</h2><ul>' + view_items + '</ul>' if views else ''}{images}</body></html>
"""

"""``run-benchmark report``: runs side by side, with 95% bootstrap intervals, breakdowns and plots.

Runs are grouped by what makes numbers comparable (suite, samples per task, temperature, top-p, token
budget); different groups get separate tables and plots and are never averaged together. Outputs:
``report.md``, ``report.csv``, a self-contained ``report.html`` (styles and images inline) and PNGs.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

import pandas as pd

from harness.finished_runs import FinishedRun
from harness.statistics import bootstrap_mean


def _group_label(settings: dict[str, Any]) -> str:
    return (f"{settings['suite']} · n={settings['n']} · temperature={settings['temperature']} · "
            f"top_p={settings['top_p']}" + (f" · max_new_tokens={settings['max_new_tokens']}"
                                            if settings.get("max_new_tokens") else ""))


def report_ks(runs: list[FinishedRun]) -> list[int]:
    """The k values any run computed (pass@1, 10, 100 when n allows them)."""
    return sorted({int(k) for run in runs for k in run.summary.get("ks", [1])})


def runs_table(runs: list[FinishedRun], seed: int) -> pd.DataFrame:
    ks = report_ks(runs)
    rows = []
    for run in runs:
        family, variant = run.family()
        timings = run.summary.get("timings") or {}
        row: dict[str, Any] = {"group": _group_label(run.settings), "run": run.name, "model": run.model,
                               "family": family, "variant": variant, "parameters": run.parameters,
                               "suite": run.suite, "n": run.settings["n"], "temperature": run.settings["temperature"]}
        for k in ks:
            values = list(run.per_problem(f"pass@{k}").values())
            if values:
                interval = bootstrap_mean(values, seed=seed)
                row.update({f"pass@{k}": interval.estimate, f"pass@{k} low": interval.low,
                            f"pass@{k} high": interval.high})
        row["pass rate"] = run.summary["overall"].get("pass_rate")
        tiers = run.summary.get("tiers") or {}
        if "base" in tiers:
            row["base pass@1"] = tiers["base"].get("pass@1")
        row["wall seconds"] = timings.get("wall_seconds", timings.get("total_seconds"))
        row["tokens/s"] = timings.get("tokens_per_second")
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.sort_values(["group", "family", "parameters", "run"], na_position="last").reset_index(drop=True)


def category_table(runs: list[FinishedRun]) -> pd.DataFrame:
    data = {run.name: {cat: entry.get("pass@1") for cat, entry in run.summary.get("per_category", {}).items()}
            for run in runs}
    return pd.DataFrame(data).sort_index()


def turn_table(runs: list[FinishedRun]) -> pd.DataFrame:
    data = {run.name: run.summary.get("failures_by_turn") or {} for run in runs}
    return pd.DataFrame(data).fillna(0).astype(int)


def size_gains(runs: list[FinishedRun]) -> list[tuple[str, str, list[str], list[str]]]:
    """Within a group and family, for each pair of consecutive sizes: problems the bigger model solves
    (some sample passes) that the smaller does not, and the reverse."""
    out = []
    by_group: dict[tuple, list[FinishedRun]] = {}
    for run in runs:
        by_group.setdefault((_group_label(run.settings), run.family()), []).append(run)
    for members in by_group.values():
        ordered = sorted((r for r in members if r.parameters), key=lambda r: r.parameters)
        for small, big in zip(ordered, ordered[1:]):
            solved_small = {p for p, e in small.summary["per_problem"].items() if e["pass_rate"] > 0}
            solved_big = {p for p, e in big.summary["per_problem"].items() if e["pass_rate"] > 0}
            out.append((small.name, big.name, sorted(solved_big - solved_small), sorted(solved_small - solved_big)))
    return out


def _plots(frame: pd.DataFrame, categories: pd.DataFrame, ks: list[int], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for index, (group, rows) in enumerate(frame.groupby("group", sort=True)):
        sized = rows[rows["parameters"].notna()]
        if sized.empty:
            continue
        figure, axis = plt.subplots(figsize=(7, 4.5))
        for family, family_rows in sized.groupby("family"):
            family_rows = family_rows.sort_values("parameters")
            for k in ks:
                if f"pass@{k}" not in family_rows or family_rows[f"pass@{k}"].isna().all():
                    continue
                estimate = family_rows[f"pass@{k}"] * 100
                errors = [estimate - family_rows[f"pass@{k} low"] * 100, family_rows[f"pass@{k} high"] * 100 - estimate]
                axis.errorbar(family_rows["parameters"], estimate, yerr=errors, marker="o", capsize=4,
                              label=f"{family} pass@{k}")
        axis.set_xscale("log")
        axis.set_xlabel("parameters")
        axis.set_ylabel("%")
        axis.set_title(f"pass@k by model size (95% CI)\n{group}", fontsize=9)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
        path = out / f"pass_at_k_vs_size_{index + 1}.png"
        figure.tight_layout()
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    if not categories.empty:
        figure, axis = plt.subplots(figsize=(max(6, 1.2 * len(categories)), 4.5))
        (categories * 100).plot.bar(ax=axis)
        axis.set_ylabel("pass@1 %")
        axis.set_title("pass@1 per category")
        axis.legend(fontsize=7)
        figure.tight_layout()
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
    return shown.drop(columns=["group"])


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
    out.mkdir(parents=True, exist_ok=True)
    frame = runs_table(runs, seed)
    categories = category_table(runs)
    turns = turn_table(runs)
    gains = size_gains(runs)
    ks = report_ks(runs)
    plots = _plots(frame, categories, ks, out)
    frame.to_csv(out / "report.csv", index=False)

    md = ["# Benchmark report", "",
          "pass@k with 95% bootstrap intervals over problems (seeded). Runs with different suites or sampling "
          "settings are in separate groups, never averaged together.", ""]
    for group, rows in frame.groupby("group", sort=True):
        md += [f"## {group}", "", _format(rows, ks).to_markdown(index=False), ""]
    md += ["## Per category (pass@1)", "", (categories * 100).round(1).to_markdown(), "",
           "## Where failed conversations broke", "", turns.to_markdown(), ""]
    if gains:
        md += ["## What size buys", ""]
        for small, big, won, lost in gains:
            md.append(f"- {big} solves {len(won)} problem(s) that {small} does not"
                      + (f": {', '.join(won[:40])}" if won else "")
                      + (f"; and loses {len(lost)}: {', '.join(lost[:40])}" if lost else ""))
        md.append("")
    md += [f"![{p.stem}]({p.name})" for p in plots]
    (out / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")

    images = "".join(f'<figure><img alt="{p.stem}" src="data:image/png;base64,'
                     f'{base64.b64encode(p.read_bytes()).decode()}"></figure>' for p in plots)
    sections = "".join(f"<h2>{html.escape(str(group))}</h2>{_format(rows, ks).to_html(index=False, border=0)}"
                       for group, rows in frame.groupby("group", sort=True))
    gain_items = "".join(f"<li>{html.escape(big)} solves {len(won)} problem(s) that {html.escape(small)} does not"
                         f"{': ' + html.escape(', '.join(won[:40])) if won else ''}</li>" for small, big, won, _ in gains)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Benchmark report</title><style>
body{{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}}
table{{border-collapse:collapse;margin:1em 0;font-size:14px}}th,td{{padding:4px 10px;border-bottom:1px solid #ddd;
text-align:right}}th{{background:#f4f4f4}}td:first-child,th:first-child{{text-align:left}}img{{max-width:100%}}
</style></head><body><h1>Benchmark report</h1><p>pass@k with 95% bootstrap intervals over problems. Groups
differ in suite or sampling settings and are never averaged together.</p>{sections}
<h2>Per category (pass@1, %)</h2>{(categories * 100).round(1).to_html(border=0)}
<h2>Where failed conversations broke</h2>{turns.to_html(border=0)}
{'<h2>What size buys</h2><ul>' + gain_items + '</ul>' if gains else ''}{images}</body></html>
"""
    (out / "report.html").write_text(page, encoding="utf-8")
    return [out / "report.md", out / "report.csv", out / "report.html", *plots]

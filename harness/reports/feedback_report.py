"""The report's part for runs with execution feedback: pass@k after each repair round, beside the
budget-matched figures (plain sampling with as many model calls, and with as many generated tokens), as a
table and a plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.reports.finished_runs import FinishedRun


def rounds_rows(runs: list[FinishedRun], labels: list[str], ks: list[int]) -> list[dict[str, Any]]:
    """One row per (feedback run, round): pass@k and the calls- and tokens-matched pass@k (None: n too
    small)."""
    rows = []
    for run, label in zip(runs, labels):
        feedback = run.summary.get("feedback") or {}
        for entry in feedback.get("rounds") or []:
            matched = entry.get("budget_matched") or {}
            tokens = entry.get("tokens_matched") or {}
            rows.append({"run": label, "feedback": feedback.get("mode"), "round": entry["round"],
                         **{f"pass@{k}": entry.get(f"pass@{k}") for k in ks},
                         **{f"budget-matched pass@{k}": matched.get(f"pass@{k}") for k in ks},
                         "calls per plain sample": matched.get("calls_per_plain_sample"),
                         **{f"tokens-matched pass@{k}": tokens.get(f"pass@{k}") for k in ks},
                         "tokens per plain sample": tokens.get("tokens_per_plain_sample")})
    return rows


def markdown(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    header = list(rows[0])

    def cell(name: str, value: Any) -> str:
        if value is None:
            return ""
        if name.startswith(("pass@", "budget-matched", "tokens-matched")):
            return f"{100 * value:.1f}%"
        return str(value)

    lines = ["## Repair rounds (execution feedback)", "",
             "pass@k after each round of repairs; budget-matched: plain sampling with the same number of model "
             "calls; tokens-matched: with the same number of generated tokens; both estimated from the round-0 "
             "samples (empty where n is too small to estimate it).", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(name, row[name]) for name in header) + " |" for row in rows]
    return lines + [""]


def plot(rows: list[dict[str, Any]], ks: list[int], out: Path) -> list[Path]:
    """pass@k against the repair round, a solid line per run and k, the budget-matched one dashed and the
    tokens-matched one dotted."""
    if not rows:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    figure, axis = plt.subplots(figsize=(8, 5), layout="constrained")
    for run in dict.fromkeys(row["run"] for row in rows):
        mine = [row for row in rows if row["run"] == run]
        for k in ks:
            rounds = [row["round"] for row in mine]
            line, = axis.plot(rounds, [100 * (row[f"pass@{k}"] or 0) for row in mine], marker="o", clip_on=False,
                              label=f"{run} pass@{k}")
            for column, style, what in ((f"budget-matched pass@{k}", "--", "calls-matched"),
                                        (f"tokens-matched pass@{k}", ":", "tokens-matched")):
                matched = [(row["round"], row[column]) for row in mine if row[column] is not None]
                if matched:
                    axis.plot([r for r, _ in matched], [100 * v for _, v in matched], linestyle=style, marker="x",
                              clip_on=False, color=line.get_color(), label=f"{run} pass@{k}, {what}")
    axis.set_ylim(0, 100)
    axis.yaxis.set_major_formatter(PercentFormatter(100))
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_xlabel("repair round")
    axis.set_ylabel("pass@k")
    axis.set_title("pass@k after each repair round (plain sampling with as many model calls: dashed; "
                   "as many generated tokens: dotted)", fontsize=9)
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.14), frameon=False)
    path = out / "pass_at_k_vs_repair_round.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return [path]

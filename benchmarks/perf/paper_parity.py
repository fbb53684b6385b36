"""Paper parity in one command: run the papers' presets (harness/presets/papers.yaml) for Code Llama 7B,
Code Llama 7B-Python and CodeGen-350M-mono, and print the published figures beside the measured ones.

    python benchmarks/perf/paper_parity.py --data-dir ../shared/data --device cuda [--sampled] [--out DIR]
    python benchmarks/perf/paper_parity.py --tiny     # no weights: tiny models stand in, figures meaningless

Greedy pass@1 first (the default): Code Llama 7B and 7B-Python on HumanEval (164 generations each) and MBPP
3-shot (500 each), and Code Llama 7B single-line infilling in PSM and SPM (1,033 each): about 4,600
generations, well under an hour on one GPU. ``--sampled`` adds the sampled presets, 200 samples per problem:
HumanEval pass@10/100 (32,800 generations per model) and MBPP (100,000 per model) for both Code Llama models,
and CodeGen-350M-mono's HumanEval (32,800) and MTPB (115 problems x 5 cases x 40 samples = 23,000
conversations): about 60 times the greedy runs' generation. A finished run folder is reused, an interrupted
one resumed. ``--tiny`` runs every step (presets, prompts, execution, the table) with tiny-llama and
tiny-codegen in place of the real models, on 2 problems with 8 new tokens (recorded as deviations); the
published column is the real model's, the measured one is noise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from harness.cli import main as cli  # noqa: E402
from harness.presets.catalog import preset  # noqa: E402
from harness.reports.finished_runs import load_run  # noqa: E402
from harness.scoring.statistics import bootstrap_mean  # noqa: E402

CODELLAMA, CODELLAMA_PYTHON, CODEGEN = ("codellama/CodeLlama-7b-hf", "codellama/CodeLlama-7b-Python-hf",
                                        "Salesforce/codegen-350M-mono")
GREEDY = [(CODELLAMA, "codellama-humaneval-greedy"), (CODELLAMA_PYTHON, "codellama-humaneval-greedy"),
          (CODELLAMA, "codellama-mbpp-greedy"), (CODELLAMA_PYTHON, "codellama-mbpp-greedy"),
          (CODELLAMA, "codellama-infilling-single-line-psm"), (CODELLAMA, "codellama-infilling-single-line-spm")]
SAMPLED = [(CODELLAMA, "codellama-humaneval-sampled"), (CODELLAMA_PYTHON, "codellama-humaneval-sampled"),
           (CODELLAMA, "codellama-mbpp-sampled"), (CODELLAMA_PYTHON, "codellama-mbpp-sampled"),
           (CODEGEN, "codegen-humaneval"), (CODEGEN, "codegen-mtpb")]
TINY = {CODELLAMA: "tiny-llama", CODELLAMA_PYTHON: "tiny-llama", CODEGEN: "tiny-codegen"}
DATA = {"humaneval": "HumanEval.jsonl.gz", "mbpp-3shot": "mbpp.jsonl", "mtpb": "mtpb.jsonl",
        "humaneval-infilling-single-line": "infilling/HumanEval-SingleLineInfilling.jsonl.gz"}
HEADER = ["model", "preset (source)", "metric", "published", "measured [95% CI]", "difference", "within tolerance",
          "deviations"]


def run_preset(model: str, name: str, args: argparse.Namespace) -> Path:
    """One preset run (in this process), or the finished one already in its folder."""
    folder = Path(args.out) / f"{model.split('/')[-1]}--{name}"
    if (folder / "summary.json").is_file():
        return folder
    settings = preset(name).settings
    argv = ["-q", "run", "--preset", name, "--model", TINY[model] if args.tiny else model,
            "--data", str(Path(args.data_dir) / DATA[settings["suite"]]), "--results-dir", args.out,
            "--run-name", folder.name, *(["--resume"] if folder.exists() else []), *args.extra]
    if args.tiny:
        argv += ["--limit", "2", "--max-new-tokens", "8", "--device", "cpu"]
        argv += ["--n", "1", "--k", "1"] if settings.get("n", 1) > 1 else []
    elif args.device:
        argv += ["--device", args.device]
    status = cli(argv)
    if status != 0:
        raise SystemExit(f"error: the run of {name} with {model} failed (exit status {status}); see above")
    return folder


def table_rows(model: str, name: str, folder: Path) -> list[list[str]]:
    """A row per metric the preset reports: the published figure for ``model`` (the real model, also when a
    tiny one stood in), the run's estimate with its interval, the difference and the tolerance verdict."""
    chosen, run = preset(name), load_run(folder)
    figures = chosen.figures_for(model)
    metrics = list(figures) or [f"pass@{k}" for k in chosen.settings.get("k", [1])]
    deviations = ", ".join(f"{option}={entry['run']}" for option, entry in
                           ((run.summary.get("config") or {}).get("preset_deviations") or {}).items()) or "none"
    rows = []
    for metric in metrics:
        published, values = figures.get(metric), list(run.per_problem(metric).values())
        measured = bootstrap_mean(values, seed=0) if values else None
        shown = (f"{100 * measured.estimate:.1f} [{100 * measured.low:.1f}, {100 * measured.high:.1f}]"
                 if measured else "not computed")
        difference = 100 * measured.estimate - published if measured and published is not None else None
        rows.append([model, f"{name} ({chosen.source})", metric,
                     f"{published:.1f}" if published is not None else "not in the paper's text read",
                     shown, f"{difference:+.1f}" if difference is not None else "",
                     ("yes" if abs(difference) <= chosen.tolerance else "NO") + f" (±{chosen.tolerance:g})"
                     if difference is not None else "", deviations])
    return rows


def markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"),
                        help="folder with HumanEval.jsonl.gz, mbpp.jsonl, mtpb.jsonl and infilling/ "
                             "(default ../shared/data)")
    parser.add_argument("--out", default="results/paper-parity", help="folder for the run folders and parity.md")
    parser.add_argument("--sampled", action="store_true", help="also the sampled presets (about 60x the cost)")
    parser.add_argument("--model", action="append", choices=[CODELLAMA, CODELLAMA_PYTHON, CODEGEN],
                        help="only this model's presets (repeatable)")
    parser.add_argument("--tiny", action="store_true", help="tiny models in place of the real ones (no weights)")
    parser.add_argument("--device", help="--device for the runs (e.g. cuda)")
    args, args.extra = parser.parse_known_args()  # anything else goes to every `run` (e.g. --dtype bf16)
    plan = [(model, name) for model, name in GREEDY + (SAMPLED if args.sampled else [])
            if not args.model or model in args.model]
    rows = [row for model, name in plan for row in table_rows(model, name, run_preset(model, name, args))]
    text = markdown(rows)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "parity.md").write_text(text, encoding="utf-8")
    print(("Tiny models stood in for the real ones: the measured figures are noise; the table's shape is real.\n"
           if args.tiny else "") + text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The run browser at MTPB scale: builds a synthetic run the size of MTPB at n=20 (115 problems x 5 test
cases x 20 samples = 11,500 samples, in the folder format ``run`` writes) and a candidate run in which some
samples flip, writes ``run-benchmark view`` pages for them, opens them in headless Chromium and prints the
page size and load times; then writes screenshots of a sample page and of the flipped list, from two real
run folders with ``--real`` (a real model's runs, such as the llama.cpp and Hugging Face runs of
SmolLM2-135M-Instruct in ``results/real/``), else from the synthetic runs.

    python tools/view/screenshots.py [--samples-per-task 20] [--out docs/images] [--also 100000] \
        [--real RUN_DIR RUN_DIR2]

``--also N`` measures a second, larger synthetic run of about N samples (size and load time only). The
synthetic runs are made up (plausible MTPB-like turns, completions, truncation, outputs and verdicts, seeded),
not produced by a model: this measures the page, not a model, and their pages say so (the runs are named
``synthetic-*`` and their model "synthetic: made-up samples, no model"). Needs Chromium (Debian: apt-get
install chromium).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from harness.reports.finished_runs import load_run  # noqa: E402
from harness.reports.headless_chromium import Chromium, find_chromium  # noqa: E402
from harness.scoring.scores import Verdict, score  # noqa: E402
from harness.reports.view import write_view  # noqa: E402

PREFIX = "# Import libraries.\n\nimport numpy as np\n\n"
CATEGORIES = ["strings", "lists", "math", "dicts", "data", "algorithms"]
TURNS = [
    ('Assign the list {values} to a variable named "nums".', "nums = {values}"),
    ('Keep the elements of "nums" greater than {t} in "big".', "big = [x for x in nums if x > {t}]"),
    ('Square every element of "big" and store the list in "squares".', "squares = [x ** 2 for x in big]"),
    ('Compute the sum of "squares" divided by {d} and store it in "total".', "total = sum(squares) / {d}"),
    ('Print "total" rounded to 2 decimals.', "print(round(total, 2))"),
]
# What a model's completion looks like past the point where truncation stops it.
OVERRUN = ["\n# Print the result.\nprint(nums)", "\n\n\n", '\n"""Test the code."""\nassert True',
           "\ndef helper(x):\n    return x"]
SYNTHETIC_MODEL = "synthetic: made-up samples, no model"  # shown on the page, beside the run's name
STATUSES = [("passed", 0.46), ("failed", 0.24), ("error", 0.2), ("syntax_error", 0.07), ("timeout", 0.03)]


def _status(rng: random.Random, skill: float) -> str:
    if rng.random() < skill:
        return "passed"
    roll = rng.random() * (1 - STATUSES[0][1])
    for status, weight in STATUSES[1:]:
        roll -= weight
        if roll <= 0:
            return status
    return "failed"


def _sample(rng: random.Random, problem: int, case: int, sample: int, status: str, turns: int) -> dict:
    values = [rng.randint(0, 20) for _ in range(6)]
    fill = {"values": values, "t": case + 3, "d": problem % 7 + 1}
    program, records = PREFIX, []
    broken = rng.randrange(turns) if status in ("error", "syntax_error") else None
    for turn in range(turns):
        prompt_text, code = TURNS[turn]
        prompt = f"# {prompt_text.format(**fill)}\n"
        completion = code.format(**fill)
        if turn == broken:
            completion = (completion.replace("nums", "num") if status == "error"
                          else completion.replace("]", "", 1).replace(")", "", 1) or completion + " (")
        raw = completion + rng.choice(OVERRUN)
        records.append({"prompt": prompt, "raw": raw, "completion": completion,
                        "prompt_tokens": 40 + 35 * turn + len(program) // 4, "new_tokens": len(raw) // 3})
        program += prompt + completion + "\n\n"
    expected = round(sum(x ** 2 for x in values if x > case + 3) / (problem % 7 + 1), 2)
    stdout = {"passed": f"{expected}\n", "failed": f"{expected + 1.5}\n"}.get(status, "")
    stderr = ""
    reason = {"passed": "", "failed": f"printed {expected + 1.5}, expected {expected}",
              "timeout": "wall-clock limit of 25.0 s reached"}.get(status, "")
    if status == "error":
        stderr = ('Traceback (most recent call last):\n  File "<program>", line 8, in <module>\n'
                  "NameError: name 'num' is not defined. Did you mean: 'nums'?\n")
        reason = "NameError: name 'num' is not defined"
    elif status == "syntax_error":
        reason = f"SyntaxError: '[' was never closed (<program>, line {6 + 3 * broken})"
    uid = f"mtpb/{problem}/case{case}/sample{sample}"
    return {"group": problem, "task_id": f"mtpb/{problem}", "case": case, "sample": sample, "unit": uid,
            "seed": 1234, "inputs": {"values": values}, "expected": repr(expected), "turns": records,
            "program": program, "passed": status == "passed", "status": status, "reason": reason,
            "failed_turn": broken, "stdout": stdout, "stderr": stderr, "duration": round(rng.uniform(0.02, 0.4), 4),
            "execution": "run"}


def make_run(folder: Path, name: str, problems: int, cases: int, n: int, flip_from: list[dict] | None) -> list[dict]:
    """A run folder (``samples.jsonl``, ``summary.json``, ``config.yaml``) with ``problems * cases * n``
    samples; with ``flip_from``, the same samples with about 6% of the verdicts changed."""
    rng = random.Random(f"{name}-{problems}-{n}")
    records: list[dict] = []
    position = 0
    for problem in range(1, problems + 1):
        skill = rng.random() * 0.9
        turns = 3 + problem % 3
        for case in range(cases):
            for sample in range(n):
                if flip_from is None:
                    status = _status(rng, skill)
                else:
                    before = flip_from[position]
                    status = before["status"]
                    if rng.random() < 0.06:
                        status = "failed" if status == "passed" else "passed"
                records.append(_sample(random.Random(f"{problem}/{case}/{sample}/{status}"), problem, case,
                                       sample, status, turns))
                position += 1
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "samples.jsonl").open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    verdicts = [Verdict(problem_id=r["task_id"], category=CATEGORIES[int(r["task_id"].split("/")[1]) % 6],
                        case=r["case"], sample=r["sample"], passed=r["passed"], status=r["status"],
                        turn=r["failed_turn"]) for r in records]
    ks = [k for k in (1, 10, 100) if k <= n]
    config = {"suite": "mtpb", "model": SYNTHETIC_MODEL, "n": n, "k": ks, "temperature": 0.8, "top_p": 0.95,
              "max_new_tokens": None, "seed": 1234}
    summary = {"suite": {"name": "mtpb", "path": "synthetic", "scorer": "mtpb", "problems": problems},
               "model": {"backend": "synthetic", "model": SYNTHETIC_MODEL, "synthetic": True},
               "config": config, "ks": ks, "seed": 1234, **score(verdicts, ks, n)}
    (folder / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    (folder / "config.yaml").write_text("".join(f"{key}: {json.dumps(value)}\n" for key, value in config.items()))
    return records


def measure(browser: Chromium, page: Path) -> dict[str, float]:
    """Open the page; the load time is the page's own: from navigation start until the problem list is
    on screen (index decoded, list rendered). Then the time to open one sample (its chunk decoded)."""
    browser.open(page)
    timing = browser.evaluate("window.viewReady.then(() => window.viewTiming)")
    sample = browser.evaluate("""(async () => { const t0 = performance.now();
        const changed = new Promise((r) => addEventListener('hashchange', r, {once: true}));
        location.hash = '#s/0/' + (V.runs[0].columns.p.length - 1); await changed; await window.viewRendering;
        return performance.now() - t0; })()""")
    return {"mb": page.stat().st_size / 1e6, "load_ms": timing["ready_ms"], "decode_ms": timing["decode_ms"],
            "sample_ms": sample, "samples": timing["samples"]}


def screenshots(browser: Chromium, one: Path, two: Path, out: Path) -> None:
    """A sample page of the one-run page ``one`` (its first sample that did not pass: the turns, the program,
    the verdict and its reason) and the flipped list of the two-run page ``two``."""
    browser.open(one)
    unit = browser.evaluate("""window.viewReady.then(() => { const c = V.runs[0].columns;
        for (let i = 0; i < c.p.length; i++) if (V.strings[c.status[i]] !== 'passed') return i; return 0; })""")
    browser.evaluate(f"(async () => {{ location.hash = '#s/0/{unit}'; await new Promise(r => "
                     "addEventListener('hashchange', r, {once: true})); await window.viewRendering; })()")
    browser.resize(1200, 1500)  # tall enough for the reply and the program
    browser.screenshot(out / "sample-page.png")
    browser.resize(1200, 860)
    browser.open(two)
    browser.evaluate("window.viewReady.then(async () => { location.hash = '#flipped'; await new Promise(r => "
                     "addEventListener('hashchange', r, {once: true})); await window.viewRendering; })")
    browser.screenshot(out / "flipped-list.png")
    print(f"screenshots: {out / 'sample-page.png'}, {out / 'flipped-list.png'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples-per-task", type=int, default=20)
    parser.add_argument("--out", default=str(ROOT / "docs" / "images"), help="folder for the screenshots")
    parser.add_argument("--also", type=int, default=0, help="also measure a run of about this many samples")
    parser.add_argument("--real", nargs=2, type=Path, default=None, metavar=("RUN_DIR", "RUN_DIR2"),
                        help="take the screenshots from these two real runs (default: the synthetic ones)")
    args = parser.parse_args()
    executable = find_chromium()
    if executable is None:
        print("Chromium is not installed (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, Chromium(executable, width=1200, height=860) as browser:
        work = Path(tmp)
        started = time.perf_counter()
        base = make_run(work / "synthetic-a", "synthetic-a", 115, 5, args.samples_per_task, None)
        make_run(work / "synthetic-b", "synthetic-b", 115, 5, args.samples_per_task, base)
        print(f"synthetic runs: 2 x {len(base)} samples ({time.perf_counter() - started:.1f}s to make)")
        one, two = work / "one.html", work / "two.html"
        started = time.perf_counter()
        write_view([load_run(work / "synthetic-a")], one)
        print(f"view written in {time.perf_counter() - started:.1f}s; samples.jsonl "
              f"{(work / 'synthetic-a' / 'samples.jsonl').stat().st_size / 1e6:.1f} MB")
        write_view([load_run(work / "synthetic-a"), load_run(work / "synthetic-b")], two)
        for label, page in (("one run", one), ("two runs", two)):
            m = measure(browser, page)
            print(f"{label}: {m['samples']} samples, page {m['mb']:.1f} MB, loaded in {m['load_ms']:.0f} ms "
                  f"(index decoded at {m['decode_ms']:.0f} ms), a sample opens in {m['sample_ms']:.0f} ms")
        if args.real:  # a real model's runs rather than the synthetic ones
            one, two = work / "real-one.html", work / "real-two.html"
            write_view([load_run(args.real[0])], one)
            write_view([load_run(args.real[0]), load_run(args.real[1])], two)
        screenshots(browser, one, two, out)
        if args.also:
            n = max(1, round(args.also / (115 * 5)))
            make_run(work / "synthetic-large", "synthetic-large", 115, 5, n, None)
            large = work / "large.html"
            started = time.perf_counter()
            write_view([load_run(work / "synthetic-large")], large)
            written = time.perf_counter() - started
            m = measure(browser, large)
            print(f"large run: {m['samples']} samples, view written in {written:.1f}s, page {m['mb']:.1f} MB, "
                  f"loaded in {m['load_ms']:.0f} ms, a sample opens in {m['sample_ms']:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

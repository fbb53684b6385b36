"""Chat replies, measured: what a chat model's replies to code prompts look like, and whether the program the
harness takes out of each reply is the one evalplus's sanitizer (``evalplus.sanitize.sanitize``) takes.

    pip install --no-deps evalplus==0.3.1 && pip install tree-sitter tree-sitter-python   # measurement only
    python benchmarks/perf/chat_extraction.py RUN_DIR [RUN_DIR ...] [--data FILE] [--verdicts]

For every code-prompt sample of the runs (chat format), it counts replies with no fenced block, several
blocks, a block that is not valid Python (prose inside it), a block cut off by the token budget (opened,
never closed), top-level statements beside the function (calls, prints, asserts: they run with the program),
and whether the reply re-declares the entry point's signature or has none of it. Then it compares the
entry-point function in the harness's program with the one in evalplus's sanitized reply (the same function,
as an AST), and with ``--verdicts`` runs evalplus's programs through ``run-benchmark evaluate`` (the
prompt, then the sanitized code, whose definition replaces the prompt's stub) and compares the verdicts.
Each disagreement is printed with the problem and what differs.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from harness.generation.prompt_formats import CODE_LANGUAGES, FENCE  # noqa: E402

FENCE_LINE = re.compile(r"^[ \t]*```", re.MULTILINE)


def parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def function_of(code: str, name: str) -> str | None:
    """The AST dump of the last top-level ``def name`` in ``code`` (the one a call reaches), or None."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return None
    found = [node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
             and node.name == name]
    return ast.dump(found[-1]) if found else None


def top_level_statements(code: str) -> int:
    """Statements at the top level that are neither definitions, imports, assignments nor docstrings: they
    run when the program does."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return 0
    quiet = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom, ast.Assign,
             ast.AnnAssign)
    return sum(1 for node in tree.body if not isinstance(node, quiet)
               and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)))


def shape(reply: str, completion: str, entry_point: str, budget_hit: bool) -> list[str]:
    """The reply's traits (names of the counted categories)."""
    blocks = [(lang.lower(), body) for lang, body in FENCE.findall(reply)]
    code_blocks = [body for lang, body in blocks if lang in CODE_LANGUAGES]
    traits = []
    if not blocks:
        traits.append("no fenced block")
        if not parses(reply.strip("\n")):
            traits.append("no fenced block and not Python (no code)")
    if len(code_blocks) > 1:
        traits.append("several Python blocks")
    if any(not parses(body) for body in code_blocks):
        traits.append("a block that is not valid Python (prose inside, or the model's own syntax error)")
    if len(FENCE_LINE.findall(reply)) % 2 == 1:
        traits.append("a block cut off (unclosed fence)" + (" at the token budget" if budget_hit else ""))
    if re.search(rf"^(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", completion, re.MULTILINE):
        traits.append("signature re-declared")
    elif not completion.startswith((" ", "\t")):
        traits.append("signature missing (neither the function nor its body)")
    if top_level_statements(completion):
        traits.append("top-level statements beside the function (run with it)")
    return traits


def load_samples(folders: list[Path]) -> list[tuple[str, dict[str, Any], int]]:
    """(run name, sample, max_new_tokens) for every single-turn sample of the runs (of a run still going, the
    samples its part files hold)."""
    out = []
    for folder in folders:
        config = yaml.safe_load((folder / "config.yaml").read_text())  # a run still going has no summary yet
        budget = config.get("max_new_tokens") or 512
        files = [folder / "samples.jsonl"] if (folder / "samples.jsonl").exists() else sorted(folder.glob("parts/*.jsonl"))
        for line in (row for file in files for row in file.read_text().splitlines()):
            try:
                sample = json.loads(line)
            except ValueError:  # a part file's line being written
                continue
            if len(sample.get("turns") or ()) == 1:
                out.append((folder.name, sample, budget))
    return out


def evalplus_verdicts(suite: str, data: str | None, programs: list[tuple[str, str]]) -> list[bool]:
    """Run the sanitized programs (prompt + sanitized code) through ``run-benchmark evaluate``."""
    with tempfile.TemporaryDirectory() as tmp:
        samples = Path(tmp) / "sanitized.jsonl"
        samples.write_text("".join(json.dumps({"task_id": task, "completion": "\n" + code}) + "\n"
                                   for task, code in programs))
        command = [sys.executable, "-m", "harness.cli", "evaluate", "--suite", suite, "--samples", str(samples),
                   "--results-dir", tmp, "--run-name", "sanitized", "--k", "1"]
        subprocess.run(command + (["--data", data] if data else []), check=True, cwd=ROOT, capture_output=True)
        results = [json.loads(line) for line in Path(f"{samples}_results.jsonl").read_text().splitlines()]
    return [bool(r["passed"]) for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--suite", default="humaneval")
    parser.add_argument("--data", default=None)
    parser.add_argument("--verdicts", action="store_true", help="also execute evalplus's programs")
    args = parser.parse_args()
    from evalplus.sanitize import sanitize

    from harness.suites.registry import resolve_suite

    problems = {p.id: p for p in resolve_suite(args.suite, args.data).problems}
    samples = [(run, s, budget) for run, s, budget in load_samples(args.runs) if s["task_id"] in problems]
    traits: Counter = Counter()
    same = 0
    differing: list[tuple[str, dict[str, Any], str]] = []
    sanitized_programs = []
    for run, sample, budget in samples:
        turn, problem = sample["turns"][0], problems[sample["task_id"]]
        traits.update(shape(turn["raw"], turn["completion"], problem.entry_point, turn["new_tokens"] >= budget))
        if turn.get("extraction"):  # what the run recorded (samples.jsonl turns[].extraction)
            traits[f"recorded extraction: {turn['extraction']}"] += 1
        theirs = sanitize(turn["raw"], problem.entry_point)
        sanitized_programs.append((sample["task_id"], theirs))
        ours_fn = function_of(sample["program"], problem.entry_point)
        theirs_fn = function_of(problem.prompt + "\n" + theirs, problem.entry_point)
        if ours_fn == theirs_fn:
            same += 1
        else:
            differing.append((run, sample, theirs))
    n = len(samples)
    print(f"{n} chat replies to code prompts ({', '.join(sorted({r for r, _, _ in samples}))})\n")
    print("| reply trait | replies | share |\n|---|---|---|")
    for name, count in sorted(traits.items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {count} | {100 * count / n:.1f}% |")
    print(f"\nentry-point function identical (AST) in the harness's program and evalplus's sanitized reply: "
          f"{same}/{n} ({100 * same / n:.1f}%)")
    if args.verdicts:
        verdicts = evalplus_verdicts(args.suite, args.data, sanitized_programs)
        agree = sum(1 for (_, s, _), v in zip(samples, verdicts) if s["passed"] == v)
        print(f"verdicts agree: {agree}/{n}; harness passes {sum(s['passed'] for _, s, _ in samples)}, "
              f"evalplus-sanitized passes {sum(verdicts)}")
        for (run, sample, _), verdict in zip(samples, verdicts):
            if sample["passed"] != verdict:
                print(f"  verdict differs: {run} {sample['task_id']}: harness {sample['status']}, "
                      f"evalplus-sanitized {'pass' if verdict else 'fail'}")
    print("\nfunctions that differ:")
    for run, sample, theirs in differing:
        print(f"--- {run} {sample['task_id']} (harness: {sample['status']})\n[harness program]\n{sample['program']}"
              f"\n[evalplus sanitized]\n{theirs}\n")


if __name__ == "__main__":
    main()

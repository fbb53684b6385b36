"""``/verify`` gives ``evaluate``'s verdicts: all of HumanEval's canonical solutions and the forgery tests'
programs (as samples of a suite made of their problems), run by both with the verdict cache off on
``evaluate``'s side; pass@k for several samples of a task; the verdict cache shared with the command line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import requests

from conftest import needs_shared_data, run_cli
from serve_process import running_service
from test_forgery import ASSERT_TRICKS, HELPERS, PRINTED_TRICKS, RIGHT, RIGHT_VALUE, TEST, WRONG, WRONG_VALUE

FORGERY_SUITE = {
    "suite.yaml": {"name": "forgery", "description": "test_forgery's programs as samples", "scorer": "strict"},
    "problems.yaml": {"problems": [
        {"id": "forgery/double", "category": "assert", "prompt": HELPERS, "entry_point": "double",
         "reference": "    return 2 * x\n", "test": TEST},
        {"id": "forgery/print", "category": "printed", "turns": [{"prompt": "Print 1234.", "reference": "print(1234)"}],
         "tests": [{"inputs": {}, "expected": 1234}]},
    ]},
}
FIELDS = ("task_id", "case", "sample", "passed", "status", "reason", "failed_turn")


def _forgery_samples() -> list[dict]:
    samples = []
    for template, _ in ASSERT_TRICKS.values():
        for expression in (WRONG, RIGHT):
            samples.append({"task_id": "forgery/double",
                            "completion": "    return 0\n" + template.replace("{e}", expression)})
    for template, scorers, _ in PRINTED_TRICKS.values():
        if "strict" in scorers:
            for value in (WRONG_VALUE, RIGHT_VALUE):
                samples.append({"task_id": "forgery/print", "case": 0, "completions": [template.replace("{v}", value)]})
    return samples


def _humaneval_samples(data: Path) -> list[dict]:
    with gzip.open(data, "rt") as handle:
        return [{"task_id": p["task_id"], "completion": p["canonical_solution"]} for p in map(json.loads, handle)]


def _evaluated(tmp_path: Path, name: str, suite: str, data: str | None, samples: list[dict], *flags: str) -> list[dict]:
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in samples))
    out = run_cli("-q", "evaluate", "--suite", suite, *(["--data", data] if data else []), "--samples", str(path),
                  "--results-dir", str(tmp_path), "--run-name", name, *flags)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in (tmp_path / name / "samples.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def forgery_suite(tmp_path_factory) -> Path:
    import yaml

    folder = tmp_path_factory.mktemp("forgery-suite")
    for name, content in FORGERY_SUITE.items():
        (folder / name).write_text(yaml.safe_dump(content, sort_keys=False))
    return folder


@pytest.fixture(scope="module")
def service():
    with running_service("--workers", "2") as (url, _):
        yield url


def _verified(url: str, suite: str, data: str | None, samples: list[dict], k: list[int] | None = None) -> dict:
    reply = requests.post(url + "/verify", json={"suite": suite, "data": data, "samples": samples, "k": k or [1]},
                          timeout=600)
    assert reply.status_code == 200, reply.text
    return reply.json()


def _key(record: dict) -> tuple:
    return tuple(record[f] for f in FIELDS)


def test_verify_gives_evaluates_verdicts_on_humaneval_and_the_forgery_programs(service, forgery_suite, tmp_path):
    data = str(needs_shared_data("HumanEval.jsonl.gz"))
    for name, suite, suite_data, samples in (("humaneval", "humaneval", data, _humaneval_samples(Path(data))),
                                             ("forgery", str(forgery_suite), None, _forgery_samples())):
        expected = _evaluated(tmp_path, name, suite, suite_data, samples, "--no-verdict-cache", "--no-dedup")
        got = _verified(service, suite, suite_data, samples)["verdicts"]
        assert [_key(v) for v in got] == [_key(r) for r in expected]
        assert [v["tiers"] for v in got] == [r.get("tiers") for r in expected]
    assert all(v["passed"] for v in _verified(service, "humaneval", data, _humaneval_samples(Path(data)))["verdicts"])


def test_pass_at_k_for_several_samples_of_a_task(service):
    right = {"task_id": "core/he-running-max",
             "completion": "    out = []\n    for v in values:\n        out.append(v if not out else max(out[-1], v))\n"
                           "    return out\n"}
    wrong = {"task_id": "core/he-running-max", "completion": "    return values\n"}
    result = _verified(service, "core", None, [right, wrong, right], k=[1, 2, 5])
    assert [v["sample"] for v in result["verdicts"]] == [0, 1, 2]
    [task] = result["pass_at_k"]
    assert (task["n"], task["correct"]) == (3, 2)
    assert task["pass@1"] == pytest.approx(2 / 3) and task["pass@2"] == 1.0 and "pass@5" not in task


def test_the_verdict_cache_is_shared_with_the_command_line(service, tmp_path):
    samples = [{"task_id": "core/he-is-anagram", "completion": "    return sorted(a) == sorted(b)\n"}]
    assert _verified(service, "core", None, samples)["verdicts"][0]["execution"] == "run"
    assert _verified(service, "core", None, samples)["verdicts"][0]["execution"] == "cache"
    _evaluated(tmp_path, "cached", "core", None, samples)
    summary = json.loads((tmp_path / "cached" / "summary.json").read_text())
    assert summary["timings"]["executions"]["cache_hits"] == 1

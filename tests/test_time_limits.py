"""Time limits from the reference solution (harness.execution.time_limits): a code prompt's program gets
max(--timeout, 4 x the reference's CPU time) of CPU, measured once in the sandbox and cached; the limits are
in summary.json. Real sandbox, real CLI; nothing is timed by the test itself."""

from __future__ import annotations

import json
from pathlib import Path

from harness.suites.problems import CODE, MULTI_TURN, Problem
from harness.execution.problem_limits import TimeLimits
from sandbox.pool import Limits

PROBLEM = "core/he-running-max"
REFERENCE = "    out = []\n    for v in values:\n        out.append(v if not out else max(out[-1], v))\n    return out\n"
LOOPING = "    while True:\n        pass\n"


def _evaluate(cli, tmp_path: Path, completions: list[str], timeout: str, name: str) -> dict:
    samples = tmp_path / f"{name}.jsonl"
    samples.write_text("".join(json.dumps({"task_id": PROBLEM, "completion": c}) + "\n" for c in completions))
    out = cli("evaluate", "--suite", "core", "--samples", str(samples), "--timeout", timeout, "--no-verdict-cache",
              "--results-dir", str(tmp_path / "results"), "--run-name", name,
              env_extra={"HARNESS_CACHE": str(tmp_path / "cache")})
    assert out.returncode == 0, out.stderr
    run = tmp_path / "results" / name
    return {"summary": json.loads((run / "summary.json").read_text()),
            "samples": [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]}


def test_a_looping_sample_is_stopped_at_the_floor_and_the_limits_are_recorded(cli, tmp_path):
    result = _evaluate(cli, tmp_path, [REFERENCE, LOOPING], "1", "floor")
    statuses = [(s["status"], s["reason"]) for s in result["samples"]]
    assert statuses == [("passed", ""), ("timeout", "CPU time limit exceeded")], statuses
    limits = result["summary"]["limits"]
    assert limits["floor_seconds"] == 1.0 and limits["factor"] == 4.0
    entry = limits["problems"][PROBLEM]
    assert 0 < entry["reference_cpu_seconds"] < 0.25, entry  # a few list appends
    assert entry["cpu_seconds"] == 1.0, entry  # max(floor, 4 x reference), in whole seconds
    assert entry["tests_cpu_seconds"] == 10.0, entry  # the problem's own timeout, for the trusted side
    cached = list((tmp_path / "cache" / "reference-times").glob("*.json"))
    assert len(cached) == 1 and PROBLEM in json.loads(cached[0].read_text())


def test_timeout_stays_the_floor_and_the_measurement_is_read_from_the_cache(cli, tmp_path):
    first = _evaluate(cli, tmp_path, [REFERENCE], "2", "first")
    assert first["summary"]["limits"]["problems"][PROBLEM]["cpu_seconds"] == 2.0  # --timeout 2 is the floor
    [cached] = (tmp_path / "cache" / "reference-times").glob("*.json")
    cached.write_text(json.dumps({PROBLEM: 0.6}))  # as if the reference had taken 0.6 s
    second = _evaluate(cli, tmp_path, [REFERENCE], "2", "second")
    entry = second["summary"]["limits"]["problems"][PROBLEM]
    assert entry["reference_cpu_seconds"] == 0.6 and entry["cpu_seconds"] == 3.0, entry  # ceil(4 x 0.6)
    assert second["samples"][0]["status"] == "passed"


def test_problems_without_a_measured_reference_keep_their_own_timeout():
    floor = Limits(wall_seconds=10.0, cpu_seconds=10.0, memory_mb=2048)
    multi_turn = Problem(id="m", category="c", kind=MULTI_TURN, source="s", timeout=20.0, scorer="mtpb")
    code = Problem(id="c", category="c", kind=CODE, source="s", timeout=60.0, reference="    return 1\n")
    limits = TimeLimits(floor, {"c": 0.01})
    mtpb = limits.for_problem(multi_turn)
    assert (mtpb.cpu_seconds, mtpb.wall_seconds, mtpb.tests_cpu_seconds) == (20.0, 45.0, None)
    timed = limits.for_problem(code)
    assert (timed.cpu_seconds, timed.tests_cpu_seconds, timed.memory_mb) == (10.0, 60.0, 2048)
    assert TimeLimits(floor).for_problem(code).cpu_seconds == 60.0  # not measured: as before
    record = limits.record([multi_turn, code])["problems"]
    assert "reference_cpu_seconds" not in record["m"] and record["c"]["reference_cpu_seconds"] == 0.01


def test_a_humanevalplus_sample_out_of_time_on_plus_inputs_keeps_its_base_verdict():
    """As in evalplus, where each tier runs in its own process: the base inputs all passed before the
    program ran out of CPU on a plus input, so base passes and plus does not."""
    from sandbox.pool import Job, SandboxPool

    reference = "def count_up(n):\n    return n\n"
    slow = "def count_up(n):\n    i = 0\n    while i < n:\n        i += 1\n    return i\n"  # linear: 10**12 never ends
    data = json.dumps({"base": [[3], [5]], "plus": [[10 ** 12]], "atol": 0})
    job = Job(program=slow, mode="evalplus", limits=Limits(wall_seconds=30, cpu_seconds=1, tests_cpu_seconds=10),
              test=data, entry_point="count_up", helpers=reference)
    with SandboxPool(workers=1, preload=()) as pool:
        execution = pool.run_one(job)
        wrong_base = pool.run_one(Job(program=slow.replace("return i", "return i + 1"), mode="evalplus",
                                      limits=job.limits, test=data, entry_point="count_up", helpers=reference))
    assert (execution.status, execution.reason) == ("timeout", "CPU time limit exceeded"), execution
    assert execution.tiers == {"base": True, "plus": False} and not execution.passed
    assert wrong_base.tiers == {"base": False, "plus": False}, wrong_base

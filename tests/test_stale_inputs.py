"""No stale result passes as fresh: a resumed run refuses an edited suite or another data file, and every
data file is checked against the release it claims to be (cached, downloaded or given with --data)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path


from conftest import needs_shared_data, run_cli

SUITE = """id: t/double
category: math
turns:
  - prompt: Assign {x} to "x".
    reference: x = {x}
  - prompt: Print twice "x".
    reference: print(2 * x)
tests:
  - inputs: {x: 2}
    expected: 4
  - inputs: {x: 5}
    expected: 10
"""


def _run(suite: Path, results: Path, *extra: str, env: dict[str, str] | None = None):
    return run_cli("run", "--suite", str(suite), "--model", "reference", "--results-dir", str(results),
                   "--run-name", "r", "--workers", "1", *extra, env_extra=env)


def test_resume_refuses_an_edited_suite_naming_it(tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "p.yaml").write_text(SUITE)
    first = _run(suite, tmp_path / "results")
    assert first.returncode == 0, first.stderr[-2000:]
    config = (tmp_path / "results" / "r" / "config.yaml").read_text()
    summary = json.loads((tmp_path / "results" / "r" / "summary.json").read_text())
    assert summary["suite"]["suite_sha256"] in config
    samples = (tmp_path / "results" / "r" / "samples.jsonl").read_bytes()

    (suite / "p.yaml").write_text(SUITE.replace("expected: 10", "expected: 11"))
    resumed = _run(suite, tmp_path / "results", "--resume")
    assert resumed.returncode == 2
    assert "suite's content" in resumed.stderr and "field 'inputs'" in resumed.stderr
    assert "Traceback" not in resumed.stderr and len(resumed.stderr.strip().splitlines()) == 1
    assert (tmp_path / "results" / "r" / "samples.jsonl").read_bytes() == samples  # nothing written is lost

    fresh = _run(suite, tmp_path / "fresh")
    assert fresh.returncode == 0
    assert json.loads((tmp_path / "fresh" / "r" / "summary.json").read_text())["overall"]["pass@1"] == 0.5


def test_resume_refuses_another_data_file(tmp_path):
    original = needs_shared_data("infilling/HumanEval-RandomSpanInfillingLight.jsonl.gz")
    with gzip.open(original, "rt") as handle:
        records = [json.loads(line) for line in handle][:2]
    data = tmp_path / "light.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    args = ("--suite", "humaneval-infilling-random-span-light", "--data", str(data), "--model", "reference",
            "--results-dir", str(tmp_path / "results"), "--run-name", "r", "--workers", "1")
    first = run_cli("run", *args)
    assert first.returncode == 0, first.stderr[-2000:]
    records[1]["test"] = records[1]["test"].replace("def check", "def check_unused") + "\ndef check(c):\n    assert False\n"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    resumed = run_cli("run", *args, "--resume")
    assert resumed.returncode == 2 and "the data file changed" in resumed.stderr, resumed.stderr[-2000:]


# ------------------------------------------------------------------ data files against their releases






def _tampered_cache(tmp_path: Path) -> Path:
    cache = tmp_path / "cache"
    (cache / "data").mkdir(parents=True)
    genuine = needs_shared_data("mbpp.jsonl").read_text().splitlines(keepends=True)
    lines = [line for line in genuine if json.loads(line)["task_id"] != 11]
    (cache / "data" / "mbpp.jsonl").write_text("".join(lines))  # problem 11 removed
    return cache


def test_a_tampered_cache_file_is_fetched_again_with_a_loud_warning(tmp_path, mirror):
    folder, url = mirror
    (folder / "mbpp.jsonl").write_bytes(needs_shared_data("mbpp.jsonl").read_bytes())
    cache = _tampered_cache(tmp_path)
    result = run_cli("validate", "mbpp", env_extra={"HARNESS_CACHE": str(cache), "HARNESS_DATA_MIRROR": url})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "CACHED MBPP DATA WAS CHANGED AFTER DOWNLOAD" in result.stderr
    assert "mbpp: 500 problems" in result.stdout
    assert (cache / "data" / "mbpp.jsonl").read_bytes() == (folder / "mbpp.jsonl").read_bytes()
    assert (cache / "data" / "mbpp.jsonl.tampered").exists()  # kept aside, not deleted


def test_a_tampered_cache_file_that_cannot_be_fetched_again_is_refused(tmp_path, mirror):
    _, url = mirror  # the mirror serves nothing: the download fails
    cache = _tampered_cache(tmp_path)
    result = run_cli("run", "--suite", "mbpp", "--model", "reference", "--results-dir", str(tmp_path / "results"),
                     env_extra={"HARNESS_CACHE": str(cache), "HARNESS_DATA_MIRROR": url})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cached copy was changed after download" in result.stderr.splitlines()[-1]
    assert not (tmp_path / "results").exists()


def test_a_data_file_that_differs_from_the_release_is_recorded_and_warned_about(tmp_path):
    lines = needs_shared_data("mbpp.jsonl").read_text().splitlines(keepends=True)
    data = tmp_path / "mbpp.jsonl"
    data.write_text("".join(line for line in lines if 11 <= json.loads(line)["task_id"] <= 12))
    result = run_cli("run", "--suite", "mbpp", "--data", str(data), "--model", "reference", "--results-dir",
                     str(tmp_path), "--run-name", "r", "--workers", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "is NOT the pinned release" in result.stderr
    origin = json.loads((tmp_path / "r" / "summary.json").read_text())["suite"]["origin"]
    assert origin["matches_release"] is False
    assert origin["release_sha256"] == "ccf64ceae9c5403bf50a044cb6d505bfd2a2963ee58338ba268fd65beab92a9f"
    genuine = run_cli("run", "--suite", "mbpp", "--data", str(needs_shared_data("mbpp.jsonl")), "--model",
                      "reference", "--problems", "Mbpp/11", "--results-dir", str(tmp_path), "--run-name", "g")
    assert genuine.returncode == 0, genuine.stderr[-2000:]
    assert json.loads((tmp_path / "g" / "summary.json").read_text())["suite"]["origin"]["matches_release"] is True


def test_a_short_file_is_not_validated_as_the_multi_line_infilling_set(tmp_path):
    with gzip.open(needs_shared_data("infilling/HumanEval-SingleLineInfilling.jsonl.gz"), "rt") as handle:
        three = [next(handle) for _ in range(3)]
    data = tmp_path / "HumanEval-MultiLineInfilling.jsonl"
    data.write_text("".join(three))
    result = run_cli("validate", "humaneval-infilling-multi-line", "--data", str(data))
    assert result.returncode == 1
    assert "NOT the pinned release" in result.stderr  # pinned by SHA-256 now, not told apart by its record count
    assert "FAIL" in result.stdout and "\nok\n" not in result.stdout


def test_validate_mtpb_references_does_not_say_ok_after_running_nothing():
    result = run_cli("validate", "mtpb", "--data", str(needs_shared_data("mtpb.jsonl")), "--references")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no problem of suite mtpb has a reference solution" in result.stderr
    assert "ok" not in result.stdout.split()

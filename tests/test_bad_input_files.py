"""Bad files and places a user points the harness at: one line naming the file and field, exit status 2,
no traceback, nothing already written lost. Suites, samples, outputs, caches, finished runs, resumes after
a torn line, and an endpoint that does not speak JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from conftest import JsonEndpoint, refused_in_process
from harness.suites.yaml_input import MAX_EXPANDED_SIZE, Loader, expanded_size

GOOD = """id: p1
category: c
turns:
  - prompt: Set s to "{s}".
    reference: s = "{s}"
  - prompt: Print s.
    reference: print(s)
tests:
  - inputs: {s: abc}
    expected: abc
"""


def one_error_line(out) -> str:
    # A progress bar's carriage returns end its lines too.
    errors = [line for line in re.split(r"[\r\n]", out.stderr) if line.startswith("error:")]
    assert out.returncode == 2, out.stderr
    assert len(errors) == 1 and "Traceback" not in out.stderr, out.stderr
    return errors[0]


def suite_with(tmp_path: Path, problem: str | bytes, suite_yaml: str | None = None) -> Path:
    folder = tmp_path / "suite"
    folder.mkdir(exist_ok=True)
    data = problem if isinstance(problem, bytes) else problem.encode()
    (folder / "p.yaml").write_bytes(data)
    if suite_yaml is not None:
        (folder / "suite.yaml").write_text(suite_yaml)
    return folder


def laughs(levels: int = 9) -> str:
    """The billion-laughs document: 10^levels values from a few hundred bytes."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("problem,suite_yaml,needle", [
    (GOOD.encode().replace(b"abc", b"ab\xff"), None, "not UTF-8"),
    (GOOD.replace('"{s}"', '"{s:d}"'), None, "format spec"),
    (GOOD.replace('"{s}"', '"{s:999999999999}"'), None, "format spec"),
    (GOOD.replace('"{s}"', '"{s!r}"'), None, "conversion"),
    (GOOD.replace('"{s}"', '"{s[9]}"'), None, "cannot fill"),
    (GOOD + "timeout: .nan\n", None, "field 'timeout'"),
    (GOOD + "timeout: .inf\n", None, "field 'timeout'"),
    (GOOD + "timeout: true\n", None, "field 'timeout'"),
    (GOOD, "defaults: [1, 2]\n", "field 'defaults'"),
    (GOOD, "program_prefix: 5\n", "field 'program_prefix'"),
    (GOOD, "sandbox_preload: numpy\n", "field 'sandbox_preload'"),
    (GOOD, "name: [x]\n", "field 'name'"),
    ("problems: [{id: p}]\ndefaults: [1]\n", None, "field 'defaults'"),
    (laughs() + GOOD.replace("expected: abc", "expected: *a8"), None, "aliases expand"),
    (laughs() + GOOD.replace("inputs: {s: abc}", "inputs: {s: abc, t: *a8}"), None, "aliases expand"),
    ("a: &a [*a]\n" + GOOD, None, "aliases expand"),
])
def test_bad_suites(capsys, tmp_path, problem, suite_yaml, needle):
    line = refused_in_process(["validate", str(suite_with(tmp_path, problem, suite_yaml))], capsys)
    assert needle in line and ("p.yaml" in line or "suite.yaml" in line), line


def test_alias_expansion_is_counted_without_expanding():
    document = yaml.load(laughs(9), Loader=Loader)
    assert expanded_size(document) > MAX_EXPANDED_SIZE
    small = yaml.load(laughs(3), Loader=Loader)
    # The mapping, its keys (1 + two characters each), its three lists ("lol": 1 + three characters).
    assert expanded_size(small) == 1 + 3 * 3 + 41 + 411 + 4111


def test_libyaml_is_used_when_present():
    assert Loader is (yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader)


def write_samples(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "samples.jsonl"
    path.write_bytes(data)
    return path


ROMAN = json.dumps({"task_id": "core/he-roman", "completion": "    return ''\n"}).encode() + b"\n"


@pytest.mark.parametrize("data,needle", [
    (ROMAN + b'{"task_id": "core/he-roman", "completion": "\xff"}\n', "line 2: not UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000 + b"\n", "nested too deeply"),
    (ROMAN + b"[1]\n", "line 2: not a JSON object"),
])
def test_bad_samples_files(capsys, tmp_path, data, needle):
    samples = write_samples(tmp_path, data)
    argv = ["evaluate", "--suite", "core", "--samples", str(samples), "--results-dir", str(tmp_path / "r")]
    assert needle in refused_in_process(argv, capsys)
    assert not (tmp_path / "r").exists()


def test_samples_naming_a_folder(capsys, tmp_path):
    argv = ["evaluate", "--suite", "core", "--samples", str(tmp_path), "--results-dir", str(tmp_path / "r")]
    assert "is a folder" in refused_in_process(argv, capsys)


def test_an_unwritable_results_file_is_refused_before_executing(cli, tmp_path):
    samples = write_samples(tmp_path, ROMAN)
    Path(f"{samples}_results.jsonl").mkdir()  # cannot be replaced by a file
    out = cli("evaluate", "--suite", "core", "--samples", str(samples), "--results-dir", str(tmp_path / "r"),
              "--run-name", "ev")
    assert "samples.jsonl_results.jsonl" in one_error_line(out)
    assert not (tmp_path / "r" / "ev").exists()  # nothing was executed, no folder started


def finished(cli, results: Path, name: str, *extra: str) -> Path:
    out = cli("-q", "run", "--model", "reference", "--problems", "core/vowel-count,core/he-roman",
              "--results-dir", str(results), "--run-name", name, *extra)
    assert out.returncode == 0, out.stderr
    return results / name


@pytest.fixture(scope="module")
def a_run(tmp_path_factory) -> Path:
    from conftest import run_cli

    return finished(run_cli, tmp_path_factory.mktemp("runs"), "a")


def test_report_out_a_file_or_unwritable(cli, a_run, tmp_path):
    afile = tmp_path / "file"
    afile.write_text("mine\n")
    for out_dir in (afile, afile / "sub"):
        out = cli("report", str(a_run), "--out", str(out_dir))
        assert "field 'out'" in one_error_line(out)
    assert afile.read_text() == "mine\n"


def test_compare_markdown_unwritable_is_exit_2_not_1(cli, a_run, tmp_path):
    (tmp_path / "pr.md").mkdir()
    for target in (tmp_path / "pr.md", tmp_path / "missing" / "pr.md"):
        out = cli("compare", "--baseline", str(a_run), "--candidate", str(a_run), "--markdown", str(target))
        assert "field 'markdown'" in one_error_line(out)


@pytest.mark.parametrize("edit,needle", [
    (lambda s: {**s, "per_problem": []}, "per_problem"),
    (lambda s: {**s, "per_problem": {"x": {"pass@1": "high"}}}, "per_problem"),
    (lambda s: {**s, "suite": {"name": 3}}, "suite.name"),
    (lambda s: {**s, "ks": ["1"]}, "ks"),
    (lambda s: {**s, "timings": [1]}, "timings"),
    (lambda s: [s], "summary"),
])
def test_a_hand_edited_summary(cli, a_run, tmp_path, edit, needle):
    import shutil

    copy = tmp_path / "edited"
    shutil.copytree(a_run, copy)
    summary = json.loads((copy / "summary.json").read_text())
    (copy / "summary.json").write_text(json.dumps(edit(summary)))
    for args in (["compare", "--baseline", str(a_run), "--candidate", str(copy)],
                 ["report", str(copy), "--out", str(tmp_path / "report")]):
        assert needle in one_error_line(cli(*args))


def test_a_summary_that_is_not_utf8(cli, a_run, tmp_path):
    import shutil

    copy = tmp_path / "edited"
    shutil.copytree(a_run, copy)
    (copy / "summary.json").write_bytes(b'{"suite": "\xff"}')
    assert "summary.json" in one_error_line(cli("report", str(copy), "--out", str(tmp_path / "report")))


@pytest.mark.parametrize("command", ["run", "evaluate"])
def test_harness_cache_that_is_a_file(cli, tmp_path, command):
    cache = tmp_path / "cache"
    cache.write_text("not a folder\n")
    samples = write_samples(tmp_path, ROMAN)
    args = {"run": ["run", "--model", "reference", "--limit", "1"],
            "evaluate": ["evaluate", "--suite", "core", "--samples", str(samples)]}[command]
    for home in (cache, cache / "below"):
        out = cli(*args, "--results-dir", str(tmp_path / "r"), "--run-name", "c", env_extra={"HARNESS_CACHE": str(home)})
        assert "HARNESS_CACHE" in one_error_line(out)
        assert cache.read_text() == "not a folder\n"
        assert not (tmp_path / "r" / "c").exists()  # a failed start leaves no folder


@pytest.mark.parametrize("data,needle", [
    (b'{"id": 1, "prompts": ["a"], "inputs": [{}], "outputs": [1]}\n\xff\n', "line 2: not UTF-8"),
    (b'{"task_id": "HumanEval/0", "prompt": "def f(): pass"}\n', "numeric 'id'"),
    (b'{"id": 1, "prompts": "a", "inputs": [{}], "outputs": [1]}\n', "field 'prompts'"),
    (b'[1, 2]\n', "not a JSON object"),
    (b"", "no MTPB records"),
])
def test_import_of_a_wrong_file(capsys, tmp_path, data, needle):
    source = tmp_path / "mtpb.jsonl"
    source.write_bytes(data)
    assert needle in refused_in_process(["import", "mtpb", str(source), "--out", str(tmp_path / "suite")], capsys)
    assert not (tmp_path / "suite").exists()


def test_resume_after_a_torn_multibyte_line_and_a_line_without_unit(cli, tmp_path):
    """A crash can cut the last line inside a UTF-8 character; a hand edit can leave a line without
    ``unit``, or with a unit its group does not have. All are dropped and their groups redone, ending as the
    uninterrupted run."""
    run = finished(cli, tmp_path, "torn", "--batch-size", "1")  # a group per line
    lines = (run / "samples.jsonl").read_bytes().splitlines(keepends=True)
    complete = [json.loads(line) for line in lines]
    last = json.loads(lines[-1])
    last["stdout"] = "ééé"
    torn = json.dumps(last, ensure_ascii=False).encode()
    cut = torn.index("é".encode()) + 1  # inside the two bytes of é
    unitless = {k: v for k, v in json.loads(lines[0]).items() if k != "unit"}
    stranger = {**json.loads(lines[1]), "unit": "no-such-unit"}  # would complete its group if counted
    edited = [json.dumps(unitless).encode() + b"\n", json.dumps(stranger).encode() + b"\n", *lines[2:-1], torn[:cut]]
    (run / "samples.jsonl").write_bytes(b"".join(edited))
    (run / "summary.json").unlink()
    out = cli("-q", "run", "--model", "reference", "--problems", "core/vowel-count,core/he-roman",
              "--results-dir", str(tmp_path), "--run-name", "torn", "--resume", "--batch-size", "1")
    assert out.returncode == 0, out.stderr
    resumed = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    drop = ("duration", "execution")
    assert [{k: v for k, v in r.items() if k not in drop} for r in resumed] == \
        [{k: v for k, v in r.items() if k not in drop} for r in complete]
    assert json.loads((run / "summary.json").read_text())["overall"]["pass_rate"] == 1.0


@pytest.fixture
def html_server():
    """An HTTP server on 127.0.0.1 that answers every POST with a web page, as a wrong --base-url would."""
    page = b"<html><body>Welcome to nginx!</body></html>"
    with JsonEndpoint(lambda path, body: (200, page, {"Content-Type": "text/html"})) as server:
        yield server.url


def test_an_endpoint_that_does_not_answer_json(cli, tmp_path, html_server):
    out = cli("-q", "run", "--backend", "openai", "--base-url", html_server, "--model", "m", "--limit", "1",
              "--results-dir", str(tmp_path), "--run-name", "o")
    line = one_error_line(out)
    assert "did not answer with a JSON object" in line and "nginx" in line and "base_url" in line

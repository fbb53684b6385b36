"""``run-benchmark view``: the page built from real run folders (samples scored by the real sandbox through
``evaluate``), opened in headless Chromium (one browser for all the page checks), plus its bad input.

The two runs differ on purpose: the baseline breaks ``core/word-lengths`` at turn 2 in every second sample
and the candidate fixes it (4 samples fail -> pass), while the candidate's first ``core/vowel-count`` sample
carries hostile markup in a completion, in stdout and in stderr and fails (1 sample pass -> fail).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import run_cli
from harness.reports.compare import compare_runs
from harness.reports.finished_runs import load_run
from harness.reports.headless_chromium import Chromium, find_chromium
from harness.reports.view_data import turn_parts, turn_spans

HOSTILE = "<script>alert(1)</script></textarea><img src=x onerror=alert(2)>"
HOSTILE_STDOUT = "<img src=x onerror=alert(3)>"
HOSTILE_STDERR = "<script>alert(4)</script>"
VOWELS = ["Hello World", "AEIOU", "rhythm", "Programming Is Fun"]
TEXTS = ["the quick brown fox", "a bb ccc dddd", "same size word", "extraordinary is long"]
ROMAN = ('    table = [(1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"),'
         ' (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")]\n    out = ""\n'
         '    for value, symbol in table:\n        while n >= value:\n            out += symbol\n'
         '            n -= value\n    return out\n')


def _samples(candidate: bool) -> list[dict]:
    lines = []
    for case, s in enumerate(VOWELS):
        for sample in range(2):
            turns = [f's = "{s}"', "lower = s.lower()", 'count = sum(1 for c in lower if c in "aeiou")', "print(count)"]
            if candidate and case == 0 and sample == 0:
                turns[2] += "  # " + HOSTILE
                turns[3] = f'import sys\nsys.stderr.write("{HOSTILE_STDERR}")\nprint("{HOSTILE_STDOUT}")'
            lines.append({"task_id": "core/vowel-count", "case": case, "completions": turns})
    for case, text in enumerate(TEXTS):
        for sample in range(2):
            turns = [f'text = "{text}"', "words = text.split()", "lengths = [len(w) for w in words]",
                     "print(max(lengths) - min(lengths))"]
            if not candidate and sample == 1:
                turns[1] = "words = text.split("
            lines.append({"task_id": "core/word-lengths", "case": case, "completions": turns})
    lines += [{"task_id": "core/he-roman", "completion": '    return ""\n'},
              {"task_id": "core/he-roman", "completion": ROMAN}]
    return lines


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("view-runs")
    for name in ("base", "cand"):
        samples = out / f"{name}.jsonl"
        samples.write_text("".join(json.dumps(line) + "\n" for line in _samples(name == "cand")))
        result = run_cli("evaluate", "--suite", "core", "--samples", str(samples), "--k", "1,2",
                         "--results-dir", str(out / "results"), "--run-name", name)
        assert result.returncode == 0, result.stderr[-2000:]
    return {"base": out / "results" / "base", "cand": out / "results" / "cand"}


@pytest.fixture(scope="module")
def pages(runs, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("view-pages")
    one = run_cli("view", str(runs["base"]), "--out", str(out / "one.html"))
    assert one.returncode == 0, one.stderr
    two = run_cli("view", str(runs["base"]), str(runs["cand"]), "--out", str(out / "two.html"))
    assert two.returncode == 0, two.stderr
    return {"one": out / "one.html", "two": out / "two.html"}


@pytest.fixture(scope="module")
def browser():
    executable = find_chromium()
    if executable is None:
        message = "Chromium is not installed (Debian: apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; CI must install it (.ci/run)")
        pytest.skip(message)
    with Chromium(executable) as chromium:
        yield chromium


def go(browser: Chromium, route: str) -> str:
    """Follow an in-page link (``#...``) and wait until the page has rendered it; returns the view's kind."""
    return browser.evaluate(f"""(async () => {{
        const changed = new Promise((resolve) => addEventListener("hashchange", resolve, {{once: true}}));
        location.hash = {json.dumps(route)};
        await changed; await window.viewRendering; return document.body.dataset.view; }})()""")


def unit_index(browser: Chromium, run: int, unit: str) -> int:
    return browser.evaluate(f"V.runs[{run}].columns.unit.indexOf({json.dumps(unit)})")


def test_one_run_list_filters_and_failing_turn(browser, pages):
    browser.open(pages["one"])
    assert browser.evaluate("window.viewReady.then(() => document.body.dataset.view)") == "list"
    rows = "document.querySelectorAll('#problems tr.problem-row').length"
    assert browser.evaluate(rows) == 3
    assert browser.evaluate("document.getElementById('problem-count').textContent") == "3 of 3 problems"
    # A filter reduces the list: only core/word-lengths has syntax errors.
    browser.evaluate("""(async () => { const s = document.getElementById('f-status'); s.value = 'syntax_error';
        s.dispatchEvent(new Event('change')); await window.viewRendering; })()""")
    assert browser.evaluate(rows) == 1
    assert browser.evaluate("document.querySelector('tr.problem-row').dataset.problem") == "core/word-lengths"
    assert browser.evaluate("document.querySelector('tr.problem-row td:nth-child(3)').textContent") == "4 / 8"
    browser.evaluate("""(async () => { document.getElementById('f-status').value = '';
        const q = document.getElementById('q'); q.value = 'ROMAN'; q.dispatchEvent(new Event('input'));
        await window.viewRendering; })()""")
    assert browser.evaluate(rows) == 1
    assert browser.evaluate("document.querySelector('tr.problem-row').dataset.problem") == "core/he-roman"
    # The sample page of a sample broken at turn 2 marks that turn and its lines of the program.
    index = unit_index(browser, 0, "core/word-lengths/case0/sample1")
    assert go(browser, f"#s/0/{index}") == "sample"
    assert browser.evaluate("[...document.querySelectorAll('.turn.failing')].map(t => t.dataset.turn)") == ["2"]
    marked = browser.evaluate("[...document.querySelectorAll('#program .line.failing')].map(l => l.textContent)")
    assert marked == ["# Split \"text\" into words on whitespace and store them in \"words\".\n",
                      "words = text.split(\n"]
    assert "SyntaxError" in browser.evaluate("document.querySelector('dl.meta').textContent")
    assert browser.evaluate("document.querySelector('dl.meta').textContent").count("word-lengths/case0/sample1") == 1
    # The problem page lists the problem's samples that pass the filters (the search is still set).
    problem = browser.evaluate("V.problems.findIndex(p => p.id === 'core/word-lengths')")
    samples = "document.querySelectorAll('#samples tr.sample-row').length"
    assert go(browser, f"#p/{problem}") == "problem"
    assert browser.evaluate(samples) == 0
    browser.evaluate("""(async () => { const q = document.getElementById('q'); q.value = '';
        q.dispatchEvent(new Event('input')); await window.viewRendering; })()""")
    assert browser.evaluate(samples) == 8
    assert browser.requests() == [pages["one"].resolve().as_uri()]  # nothing but the file itself: offline


def test_two_runs_flipped_list_matches_compare(browser, pages, runs):
    browser.open(pages["two"])
    browser.evaluate("window.viewReady")
    assert go(browser, "#flipped") == "flipped"
    flips = browser.evaluate("""[...document.querySelectorAll('.flip')].map(f => [f.dataset.problem,
        f.querySelectorAll('div.fail + ul li').length, f.querySelectorAll('div.pass + ul li').length])""")
    assert flips == [["core/vowel-count", 1, 0], ["core/word-lengths", 0, 4]]
    result = compare_runs(load_run(runs["base"]), load_run(runs["cand"]), k=1)
    assert [pid for pid, _, _ in result.worsened] == ["core/vowel-count"]
    assert [pid for pid, _, _ in result.improved] == ["core/word-lengths"]
    summary = browser.evaluate("document.getElementById('flip-summary').textContent")
    assert "1 sample(s) pass → fail, 4 fail → pass" in summary
    # Each flipped sample links to both runs' sample pages.
    links = browser.evaluate("[...document.querySelectorAll('.flip-sample a')].map(a => a.getAttribute('href'))")
    assert len(links) == 10 and all(link.startswith(("#s/0/", "#s/1/")) for link in links)


def test_hostile_markup_renders_as_text(browser, pages):
    browser.open(pages["two"])
    browser.evaluate("window.viewReady")
    count = "['script', 'img', 'textarea', 'b'].map(t => document.getElementsByTagName(t).length)"
    before = browser.evaluate(count)
    assert before[1:] == [0, 0, 0]
    index = unit_index(browser, 1, "core/vowel-count/case0/sample0")
    assert go(browser, f"#s/1/{index}") == "sample"
    assert browser.evaluate(count) == before  # no element came from the run's text
    completions = browser.evaluate("[...document.querySelectorAll('pre.completion')].map(p => p.textContent)")
    assert any(HOSTILE in text for text in completions)
    assert HOSTILE_STDOUT in browser.evaluate("document.getElementById('stdout').textContent")
    assert HOSTILE_STDERR in browser.evaluate("document.getElementById('stderr').textContent")
    assert HOSTILE in browser.evaluate("document.getElementById('program').textContent")
    assert browser.dialogs() == []  # no alert ran
    # The page would have reported a dialog: the same browser does see one a page really opens.
    browser.evaluate("setTimeout(() => alert('probe'), 0); new Promise(r => setTimeout(r, 0))")
    assert browser.dialogs() == ["probe"]


def test_fields_the_sample_lines_may_gain(browser, runs, tmp_path):
    """Scorer tiers, repair rounds and fields this version does not know: filters for the first two, the
    rest shown as they are under "Other fields"."""
    grown = tmp_path / "grown"
    shutil.copytree(runs["base"], grown)
    lines = [json.loads(line) for line in (grown / "samples.jsonl").read_text().splitlines()]
    for position, line in enumerate(lines):
        line.update({"repair_round": position % 2, "tiers": {"base": True, "plus": line["passed"]},
                     "verdict_signature": f"sig-{position}"})
    (grown / "samples.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    page = tmp_path / "grown.html"
    assert run_cli("view", str(grown), "--out", str(page)).returncode == 0
    browser.open(page)
    browser.evaluate("window.viewReady")
    assert browser.evaluate("[document.getElementById('l-tier').hidden, document.getElementById('l-round').hidden]") \
        == [False, False]
    assert browser.evaluate("[...document.getElementById('f-tier').options].map(o => o.value)") == ["", "base", "plus"]
    shown = """(async (id, value) => { const s = document.getElementById(id); s.value = value;
        s.dispatchEvent(new Event('change')); await window.viewRendering;
        return [...document.querySelectorAll('#problems tr.problem-row')].map(r => r.dataset.problem); })"""
    # Only base: the samples that failed (4 of word-lengths, 1 of he-roman); and then round 1 of those.
    assert browser.evaluate(f"{shown}('f-tier', 'base')") == ["core/word-lengths", "core/he-roman"]
    he_roman_failure = next(i for i, line in enumerate(lines) if line["task_id"] == "core/he-roman"
                            and not line["passed"])
    rounds = browser.evaluate(f"{shown}('f-round', '1')")
    expected_round = ["core/word-lengths"] + (["core/he-roman"] if he_roman_failure % 2 else [])
    assert rounds == expected_round
    assert go(browser, "#s/0/0") == "sample"
    assert json.loads(browser.evaluate("document.getElementById('other').textContent")) == {
        "repair_round": 0, "tiers": {"base": True, "plus": lines[0]["passed"]}, "verdict_signature": "sig-0"}


def test_view_bad_input(runs, tmp_path):
    existing = tmp_path / "view.html"
    existing.write_text("keep me")
    missing = run_cli("view", str(tmp_path / "nope"), "--out", str(existing))
    assert missing.returncode == 2 and "summary.json" in missing.stderr and "Traceback" not in missing.stderr
    three = run_cli("view", str(runs["base"]), str(runs["base"]), str(runs["cand"]), "--out", str(existing))
    assert three.returncode == 2 and "one run or two" in three.stderr and "Traceback" not in three.stderr
    no_folder = run_cli("view", str(runs["base"]), "--out", str(tmp_path / "absent" / "view.html"))
    assert no_folder.returncode == 2 and "absent" in no_folder.stderr
    other_suite = tmp_path / "other"
    shutil.copytree(runs["cand"], other_suite)
    summary = json.loads((other_suite / "summary.json").read_text())
    summary["suite"]["name"] = "mtpb"
    (other_suite / "summary.json").write_text(json.dumps(summary))
    different = run_cli("view", str(runs["base"]), str(other_suite), "--out", str(existing))
    assert different.returncode == 2 and "different suites" in different.stderr
    broken = tmp_path / "broken"
    shutil.copytree(runs["base"], broken)
    with (broken / "samples.jsonl").open("a") as samples:
        samples.write("{not json\n")
    malformed = run_cli("view", str(broken), "--out", str(existing))
    assert malformed.returncode == 2 and "samples.jsonl" in malformed.stderr
    assert existing.read_text() == "keep me"  # nothing already written is lost


def test_compare_markdown_links_the_flipped_list(runs):
    result = run_cli("compare", "--baseline", str(runs["base"]), "--candidate", str(runs["cand"]))
    assert "view.html#flipped" in result.stdout
    assert f"run-benchmark view {runs['base']} {runs['cand']} --out view.html" in result.stdout


def test_turn_parts_dim_what_truncation_cut():
    assert turn_parts("x = 1\n# next\nprint(2)", "x = 1\n") == [["x = 1\n", False], ["# next\nprint(2)", True]]
    assert turn_parts("Sure:\n```python\nx = 1\n```", "x = 1") == [
        ["Sure:\n```python\n", True], ["x = 1", False], ["\n```", True]]
    assert turn_parts("same", "same") == [["same", False]]


def test_turn_spans_follow_the_program():
    prefix = "# Import libraries.\n\nimport numpy as np\n\n"
    turns = [{"prompt": "# a\n", "completion": "x = 1"}, {"prompt": "# b\n", "completion": "y = (\nx"}]
    program = prefix + "# a\nx = 1\n\n# b\ny = (\nx\n\n"
    assert turn_spans(program, turns) == [[5, 6], [8, 10]]
    function = [{"prompt": "def f():\n", "completion": "    return 1\n"}]
    assert turn_spans("def f():\n    return 1\n", function) == [[1, 2]]
    assert turn_spans("head\n", [{"prompt": "", "completion": "not there"}]) == [None]


def test_a_score_summed_in_another_order_is_not_a_flip(runs, tmp_path):
    """compare (and the flipped list, which shows its problems) must not call a problem worse when its
    pass@k differs only by floating-point rounding (0.1 + 0.2 against 0.3)."""
    folders = {}
    for name, value in (("before", 0.3), ("after", 0.1 + 0.2)):
        folders[name] = tmp_path / name
        shutil.copytree(runs["base"], folders[name])
        summary = json.loads((folders[name] / "summary.json").read_text())
        summary["per_problem"]["core/he-roman"]["pass@1"] = value
        (folders[name] / "summary.json").write_text(json.dumps(summary))
    result = compare_runs(load_run(folders["before"]), load_run(folders["after"]), k=1)
    assert result.worsened == [] and result.improved == []

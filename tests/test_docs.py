"""The README and the ``docs/`` pages hold together: every page is reached from the README, every relative link
and every repository path they name points at something that exists, every ``run-benchmark`` command shown in a
shell block parses with the real command-line parser (an unknown or misspelt flag fails), the README's test
command is the one CI runs, and the code map numbers the stages as the packages do.

A shell block whose commands cannot run on a CPU machine without the network (GPUs, SLURM, Kubernetes, a
model hub, a server elsewhere) is marked with ``<!-- not run: why -->`` on the line before its fence; its
commands are still parsed where they are complete (no ``...`` standing for arguments)."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

from harness.cli import main, parser

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
SHELL = {"bash", "sh", "shell", "console"}
NOT_RUN = re.compile(r"<!--\s*not run:\s*\S.*-->")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```(\w*)\s*$")


def _blocks(page: Path) -> list[tuple[str, str, bool, int]]:
    """(language, text, marked not run, line) of every fenced block of a page."""
    lines = page.read_text(encoding="utf-8").split("\n")
    blocks, i = [], 0
    while i < len(lines):
        opened = FENCE.match(lines[i])
        if not opened:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        marked = i > 0 and bool(NOT_RUN.search(lines[i - 1]))
        blocks.append((opened.group(1), "\n".join(lines[i + 1:end]), marked, i + 1))
        i = end + 1
    return blocks


def _outside_blocks(page: Path) -> str:
    """The page's prose: links inside code blocks are code, not links."""
    return re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)


def _links(page: Path) -> list[str]:
    prose = re.sub(r"`[^`\n]*`", "", _outside_blocks(page))
    return [target for target in LINK.findall(prose) if not re.match(r"[a-z]+:", target)]


def _commands(block: str) -> list[list[str]]:
    """The harness's command lines of a shell block, as argv for its parser: ``run-benchmark ARGS`` (after
    any ``VAR=value``) and ``... -m harness.cli ARGS`` (torchrun, accelerate launch), split at ``&&``, ``;``,
    ``|`` and ``&``, comments dropped."""
    text = block.replace("\\\n", " ")
    commands = []
    for line in text.split("\n"):
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()<>")
        lexer.whitespace_split, lexer.commenters = True, "#"
        segment: list[str] = []
        for token in [*lexer, ";"]:
            if token and set(token) <= set(";&|()<>"):
                commands += _harness_argv(segment)
                segment = []
            else:
                segment.append(token)
    return commands


def _harness_argv(segment: list[str]) -> list[list[str]]:
    while segment and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", segment[0]):
        segment = segment[1:]
    if segment[:1] == ["run-benchmark"]:
        return [segment[1:]]
    if "harness.cli" in segment and segment[segment.index("harness.cli") - 1] == "-m":
        return [segment[segment.index("harness.cli") + 1:]]
    return []


def _shown_commands() -> list[tuple[str, list[str], bool]]:
    return [(f"{page.relative_to(ROOT)}:{line}", argv, marked) for page in PAGES
            for language, text, marked, line in _blocks(page) if language in SHELL
            for argv in _commands(text)]


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(README.parent / target.split("#")[0]).resolve() for target in _links(README)}
    unreached = [page.name for page in DOCS.glob("*.md") if page.resolve() not in linked]
    assert DOCS.is_dir() and not unreached, f"docs pages the README does not link: {unreached}"


def test_every_relative_link_resolves():
    broken = [f"{page.relative_to(ROOT)}: {target}" for page in PAGES for target in _links(page)
              if target.split("#")[0] and not (page.parent / target.split("#")[0]).exists()]
    assert not broken, broken


def test_every_repository_path_named_exists():
    """A file or folder of the repository named in the text (``harness/...``, ``tests/...``, ``benchmarks/...``)
    exists, so a move that leaves the docs behind fails here. ``results/`` is left out: its examples name run
    folders of the reader's."""
    named = r"(?<![\w./$-])((?:harness|sandbox|benchmarks|tests|\.ci|\.github)/[\w./-]*[\w/])"
    missing = [f"{page.relative_to(ROOT)}: {path}" for page in PAGES
               for path in re.findall(named, page.read_text(encoding="utf-8")) if not (ROOT / path).exists()]
    assert not missing, missing


def test_every_shell_block_holds_commands_that_the_harness_parses():
    shown = _shown_commands()
    assert len(shown) >= 20, shown  # the extraction finds them (the README alone shows a dozen)
    checked, failures = 0, []
    for where, argv, marked in shown:
        if marked and "..." in argv:  # a sketch of a command with its arguments elided
            continue
        errors = io.StringIO()
        try:
            with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
                parser().parse_args(argv)
        except SystemExit as exc:
            if exc.code:
                failures.append(f"{where}: run-benchmark {shlex.join(argv)}: {errors.getvalue().strip()}")
        checked += 1
    assert not failures, "\n".join(failures)
    assert checked >= 20


def test_suites_named_in_commands_exist():
    """``--suite NAME`` and ``validate NAME`` name a suite that ``run-benchmark list`` (shown in the README, and
    run here) lists; the published suites' data would need the network, so only their names are checked."""
    shown = _shown_commands()
    names = {argv[argv.index("--suite") + 1] for _, argv, _ in shown if "--suite" in argv}
    names |= {argv[1] for _, argv, _ in shown if argv[:1] == ["validate"]}
    listing = io.StringIO()
    with contextlib.redirect_stdout(listing):
        assert main(["-q", "list"]) == 0
    listed = set(re.findall(r"[\w.-]+", listing.getvalue()))
    unknown = sorted(name for name in names if name not in listed)
    assert "core" in names and not unknown, unknown


def test_the_example_problems_load(tmp_path):
    """The problem files shown in docs/problems-and-suites.md are problems the loader accepts
    (``run-benchmark validate``, as a user would check them)."""
    examples = [text for language, text, _, _ in _blocks(DOCS / "problems-and-suites.md")
                if language == "yaml" and re.search(r"^id: ", text, flags=re.M)]
    for number, text in enumerate(examples):
        (tmp_path / f"example{number}.yaml").write_text(text + "\n", encoding="utf-8")
    with contextlib.redirect_stdout(io.StringIO()):
        assert len(examples) == 2 and main(["-q", "validate", str(tmp_path)]) == 0


def test_the_readme_test_command_is_the_one_ci_runs():
    command = 'python -m pip install -q -c constraints.txt -e ".[test]" && python -m pytest -q'
    readme_blocks = [text for language, text, _, _ in _blocks(README) if language in SHELL]
    assert command in readme_blocks
    ci = (ROOT / ".ci" / "run").read_text().rstrip().split("\n")
    assert ci[-1] == command


def test_the_code_map_numbers_the_stages_as_their_packages_do():
    """docs/design.md's numbered stages are the packages whose docstrings say "Stage N, ..."."""
    stages = {}
    for init in sorted((ROOT / "harness").glob("*/__init__.py")):
        if numbered := re.match(r'"""Stage (\d+), ', init.read_text()):
            stages[numbered.group(1)] = init.parent.name
    code_map = (DOCS / "design.md").read_text()
    listed = dict(re.findall(r"^(\d+)\. \*\*[^*]+\*\* \(`harness/([a-z_]+)/`\)", code_map, flags=re.M))
    assert len(stages) >= 5 and listed == stages, (listed, stages)

"""The problem model: multi-turn natural-language conversations (MTPB style) and single code prompts
(HumanEval style), how a test case fills a conversation's placeholders, and the suite that holds them
(whichever loader made it: the YAML loader or a published dataset's)."""

from __future__ import annotations

import dataclasses
import string
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from harness.errors import InputError
from sandbox.scorers import PRINTED_VALUE_SCORERS

MULTI_TURN = "multi_turn"
CODE = "code"
# A suite chooses among the printed-value scorers; code prompts always run their tests (sandbox.scorers).
SCORERS = PRINTED_VALUE_SCORERS


@dataclass(frozen=True)
class TestCase:
    """One test case. For a multi-turn problem its ``inputs`` fill the turns' placeholders and the
    program's last printed value is compared with ``expected``; it is its own conversation."""

    inputs: dict[str, Any]
    expected: Any = None


@dataclass(frozen=True)
class Turn:
    prompt: str
    max_new_tokens: int | None = None
    reference: str | None = None


@dataclass(frozen=True)
class Problem:
    id: str
    category: str
    kind: str
    source: str
    tags: tuple[str, ...] = ()
    turns: tuple[Turn, ...] = ()
    tests: tuple[TestCase, ...] = ()
    prompt: str = ""
    entry_point: str = ""
    test: str = ""
    reference: str | None = None
    max_new_tokens: int = 128
    timeout: float = 10.0
    scorer: str = "strict"
    defects: tuple[str, ...] = ()
    suffix: str = ""
    stop_sequences: tuple[str, ...] = ()
    # False where the prompt is not code (a few-shot text prompt): the program is then the completion alone.
    prompt_in_program: bool = True
    # What a benchmark declares about a problem beyond its prompt and tests (each loader fills them):
    description: str = ""  # a line about the problem (MTPB, YAML suites): a note, not content
    # Asserts the suite's file declares as public (YAML ``public_tests``): what ``--feedback tests`` shows.
    public_tests: tuple[str, ...] = ()
    # Asserts the prompt itself shows (MBPP's first assert), or whether they are the examples its docstring
    # shows (HumanEval's, parsed only when feedback shows them: parsing all of a suite's costs each command
    # about 13 ms): shown instead where no public tests are declared. Derived from the prompt and tests, so not
    # content of their own.
    prompt_examples: tuple[str, ...] = ()
    examples_in_docstring: bool = False
    # Pass@k reported per tier, ("base", "plus") for HumanEval+: the evalplus scorer decides each tier.
    tiers: tuple[str, ...] = ()

    @property
    def program_head(self) -> str:
        """What a code-prompt program starts with, before the completion."""
        return self.prompt if self.prompt_in_program else ""

    @property
    def num_cases(self) -> int:
        """Conversations per sample: one per test case for multi-turn problems, one for code prompts."""
        return len(self.tests) if self.kind == MULTI_TURN else 1

    def filled_turns(self, case_index: int) -> list[str]:
        inputs = self.tests[case_index].inputs
        return [fill(turn.prompt, inputs) for turn in self.turns]

    def filled_references(self, case_index: int) -> list[str] | None:
        if any(turn.reference is None for turn in self.turns):
            return None
        inputs = self.tests[case_index].inputs
        return [fill(turn.reference or "", inputs) for turn in self.turns]

    def turn_max_new_tokens(self, turn_index: int) -> int:
        value = self.turns[turn_index].max_new_tokens if self.kind == MULTI_TURN else None
        return value or self.max_new_tokens


@dataclass(frozen=True)
class Suite:
    name: str
    path: str
    problems: tuple[Problem, ...]
    scorer: str = "strict"
    description: str = ""
    program_prefix: str = "# Import libraries.\n\nimport numpy as np\n\n"
    origin: dict[str, Any] | None = None
    # Modules the execution servers import once before forking each program: a program that imports
    # them then pays nothing, but every fork pays for a bigger parent (pandas: ~8 ms a fork).
    preload: tuple[str, ...] = ("numpy",)
    # Problems ``--exclude-defective`` leaves out (data defects that make them unusable as published).
    excluded_if_defective: tuple[str, ...] = ()
    # Execution feedback the suite asks for (``--feedback``/``--max-repairs`` override it); None: not set.
    feedback: str | None = None
    max_repairs: int | None = None

    def problem(self, problem_id: str) -> Problem:
        for problem in self.problems:
            if problem.id == problem_id:
                return problem
        raise KeyError(problem_id)

    def select_problems(self, wanted: list[str], limit: int | None, exclude_defective: bool = False) -> list[Problem]:
        """The problems a run scores: ``wanted`` ids or shell-style patterns (``core/he-*``; all if empty), in
        the suite's order, without the known-defective ones if asked, the first ``limit`` of them."""
        problems = list(self.problems)
        if exclude_defective:
            problems = [p for p in problems if p.id not in self.excluded_if_defective]
        if wanted:
            missing = [w for w in wanted if not any(_selects(w, p.id) for p in problems)]
            if missing:
                raise InputError(f"no such problem in suite {self.name}", file=self.path, problem=missing[0],
                                 field="problems")
            problems = [p for p in problems if any(_selects(w, p.id) for w in wanted)]
        return problems[:limit] if limit else problems



def _selects(wanted: str, problem_id: str) -> bool:
    return problem_id == wanted or fnmatchcase(problem_id, wanted)  # an id is itself, even with a [ in it


# Problem fields that do not change what a sample is or how it is scored (where the file lies, notes), or that
# follow from fields that do (the prompt's examples, the tiers of a HumanEval+ test), or that count only when
# declared (public tests): left out so that every problem hashes as before these fields existed.
_NOT_CONTENT = {"source", "defects", "description", "public_tests", "prompt_examples", "examples_in_docstring",
                "tiers"}


def problem_content(problem: Problem) -> dict[str, Any]:
    """What a sample of ``problem`` is and how it is scored: every field but where it lies and notes (the
    checksums of a run's inputs and the reference-time cache are taken over it), and the problem's declared
    ``public_tests`` (the public half of its public/hidden split, shown to the model in feedback mode). A
    problem without them hashes as before they existed, so older runs still resume."""
    content = {k: v for k, v in dataclasses.asdict(problem).items() if k not in _NOT_CONTENT}
    if problem.public_tests:
        content["public_tests"] = list(problem.public_tests)
    return content


def fill(template: str, inputs: dict[str, Any]) -> str:
    """``str.format`` semantics: ``{name}`` becomes ``str(value)``; ``{{``/``}}`` are literal braces."""
    return template.format(**inputs)


def placeholders(template: str) -> set[str]:
    """Names used by ``{placeholder}`` fields of a template (raises ValueError on a malformed one)."""
    names = set()
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is not None:
            root = name.split(".")[0].split("[")[0]
            if not root:
                raise ValueError("positional '{}' placeholders are not allowed; name them")
            if spec or conversion:
                # '{s:d}' fails on a string and '{s:999999999}' allocates without bound: values are
                # written with str() only.
                raise ValueError(f"'{{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}'"
                                 " has a format spec or conversion; write a plain '{name}'")
            names.add(root)
    return names

"""What a run's results depend on besides its options: the content of the problems it scores and the
data file they came from. Recorded in the run's ``config.yaml`` (``inputs``) and ``summary.json``, so that
``--resume`` can refuse to mix samples scored against an edited suite or another data file."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from harness.suites.problems import Problem, Suite, problem_content

INPUTS = "inputs"  # the key under which a run's config.yaml records them
def run_inputs(suite: Suite, problems: list[Problem]) -> dict[str, str | None]:
    """``data_sha256``: the data file's checksum, if any (first: a changed data file is named as the cause);
    ``suite_sha256``: the scored problems (prompts, turns, tests, public tests, expected values, references,
    limits) and the suite's scorer, program prefix and preloads."""
    content = {"scorer": suite.scorer, "program_prefix": suite.program_prefix, "preload": list(suite.preload),
               "problems": [problem_content(p) for p in problems]}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=repr).encode("utf-8")).hexdigest()
    return {"data_sha256": (suite.origin or {}).get("sha256"), "suite_sha256": digest}


def problem_checksums(suite: Suite, problems: list[Problem]) -> dict[str, str]:
    """Each scored problem's content (with the suite's scorer, program prefix and preloads), for ``compare
    --allow-subset``, which cannot use ``suite_sha256`` when the runs scored different problems. 64 bits each:
    enough to see an edit, short enough for a summary of thousands of problems."""
    shared = {"scorer": suite.scorer, "program_prefix": suite.program_prefix, "preload": list(suite.preload)}
    return {p.id: hashlib.sha256(json.dumps({**shared, "problem": problem_content(p)}, sort_keys=True,
                                            default=repr).encode("utf-8")).hexdigest()[:16] for p in problems}


_WHAT = {"suite_sha256": "the suite's content (a problem, test, public test, expected value or reference was edited)",
         "data_sha256": "the data file"}


def changed_input(previous: dict[str, Any] | None, current: dict[str, str | None]) -> str | None:
    """A one-line description of the first input that differs from the interrupted run's, or ``None``."""
    previous = previous or {}
    for key, value in current.items():
        if previous.get(key) != value:
            return (f"{_WHAT[key]} changed since the interrupted run ({key} {value}, was "
                    f"{previous.get(key) or 'not recorded'})")
    return None

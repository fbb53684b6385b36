"""``run-benchmark validate``: a suite checks itself.

Loading already checks the schema (fields, types, placeholders). Here: every problem has a reference,
references survive the format's truncation unchanged, known data defects are listed, and with
``--references`` every reference conversation runs in the sandbox and must pass, and every code prompt's
reference must pass its public tests too (the ones ``--feedback tests`` shows the model).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.errors import InputError
from harness.feedback.checks import check_job
from harness.generation.conversations import Conversation
from harness.suites.problems import MULTI_TURN, Problem, Suite
from harness.generation.prompt_formats import BaseCompletionFormat
from harness.execution.executor import Executor
from harness.execution.jobs import execute
from harness.execution.problem_limits import TimeLimits
from harness.runs.references import reference_conversations
from sandbox.pool import Execution, Limits, SandboxPool


@dataclass
class ValidationReport:
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def fail(self, line: str) -> None:
        self.failures.append(line)
        self.lines.append("FAIL " + line)


def validate_suite(suite: Suite, run_references: bool = False, workers: int = 2) -> ValidationReport:
    report = ValidationReport()
    fmt = BaseCompletionFormat()
    multi = sum(p.kind == MULTI_TURN for p in suite.problems)
    report.lines.append(f"{suite.name}: {len(suite.problems)} problems ({multi} multi-turn, "
                        f"{len(suite.problems) - multi} code prompts), scorer {suite.scorer}")
    if suite.origin and suite.origin.get("matches_release") is False:
        report.fail(f"{suite.path}: field 'data': not the published release this harness pins (SHA-256 "
                    f"{suite.origin.get('sha256')}, release {suite.origin.get('release_sha256') or 'unpinned'}; "
                    "see the warning above)")
    with_reference = []
    without_reference: list[str] = []
    for problem in suite.problems:
        for defect in problem.defects:
            report.lines.append(f"DEFECT {problem.id}: {defect}")
        if problem.kind == MULTI_TURN:
            references = problem.filled_references(0)
            if references is None:
                without_reference.append(problem.id)
                continue
            for index, text in enumerate(references):
                if fmt.truncate(text, problem) != text:
                    report.fail(f"{problem.source}: problem {problem.id}: field 'turns[{index}].reference' "
                                "is cut by MTPB truncation")
        elif problem.reference is None:
            without_reference.append(problem.id)
            continue
        with_reference.append(problem)
    if without_reference:
        report.lines.append(f"NOTE {len(without_reference)} problem(s) without a complete reference solution "
                            f"(not executed): {', '.join(without_reference[:10])}"
                            + (" ..." if len(without_reference) > 10 else ""))
    if run_references and not with_reference:
        raise InputError(f"--references: no problem of suite {suite.name} has a reference solution (MTPB "
                         "publishes none), so there is nothing to run; validate it without --references",
                         file=suite.path, field="references")
    if suite.excluded_if_defective:
        report.lines.append(f"--exclude-defective leaves out: {', '.join(suite.excluded_if_defective)}")
    if run_references and with_reference:
        _run_references(report, suite, with_reference, workers)
    report.lines.append("ok" if not report.failures else f"{len(report.failures)} problem(s) found")
    return report


def _run_references(report: ValidationReport, suite: Suite, problems: list[Problem], workers: int) -> None:
    """``--references``: every reference conversation runs in the sandbox and must pass, and every code
    prompt's reference must pass its public tests."""
    conversations = reference_conversations(problems, suite.program_prefix)
    with SandboxPool(workers=workers, preload=suite.preload) as pool:
        executor = Executor(pool, dedup=False)
        executions = execute(conversations, executor, Limits())
        public = _public_test_failures(conversations, executor)
    passed = 0
    for conversation, execution in zip(conversations, executions):
        unit = conversation.unit
        if execution.passed:
            passed += 1
        else:
            report.fail(f"{unit.problem.source}: problem {unit.problem.id}: field 'reference': test case "
                        f"{unit.case} {execution.status}: {execution.reason}")
    report.lines.append(f"references: {passed}/{len(conversations)} conversations passed")
    for conversation, execution in public:
        problem = conversation.unit.problem
        report.fail(f"{problem.source}: problem {problem.id}: field 'public_tests': the reference "
                    f"{execution.status}: {execution.reason}")


def _public_test_failures(conversations: list[Conversation], executor: Executor) -> list[tuple[Conversation, Execution]]:
    """Reference programs of code prompts that fail their public tests (what ``--feedback tests`` shows)."""
    checked = [(c, job) for c in conversations
               if (job := check_job(c.unit.problem, c.program, (1,), TimeLimits(Limits()))) is not None
               and c.unit.problem.kind != MULTI_TURN]
    executions = executor.run([job for _, job in checked]) if checked else []
    return [(c, e) for (c, _), e in zip(checked, executions) if not e.passed]

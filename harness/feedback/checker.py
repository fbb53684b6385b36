"""The feedback schedule: a group's turns and repairs, each conversation at its own pace, with every batch of
attempts checked through the run's executor (``harness.feedback.checks`` says what is checked and what the
model is told)."""

from __future__ import annotations

from harness.execution.executor import Executor
from harness.execution.problem_limits import TimeLimits
from harness.feedback.checks import FeedbackSettings, check_failed, check_job, error_type, feedback_text, turn_line
from harness.generation.conversations import Attempt, Conversation, ConversationGenerator, Unit
from harness.suites.problems import MULTI_TURN, Problem


class Checker:
    """Schedules a group's turns and repairs, runs the checks of each batch of attempts through the run's
    executor, and says what to feed back."""

    def __init__(self, settings: FeedbackSettings, executor: Executor, limits: TimeLimits):
        self.settings = settings
        self.max_repairs = settings.max_repairs
        self.executor = executor
        self.limits = limits

    def check(self, items: list[tuple[Problem, str, tuple[int, ...], int]]
              ) -> list[tuple[str | None, str, str | None, str | None]]:
        """Per (problem, program, turn line starts, line where the checked turn's code starts): the check's
        status (None: nothing to check), its reason, the error's type (None: the check passed) and the
        feedback (None: no repair)."""
        jobs = [check_job(problem, program, starts, self.limits) for problem, program, starts, _ in items]
        wanted = [(i, job) for i, job in enumerate(jobs) if job is not None]
        executions = self.executor.run([job for _, job in wanted]) if wanted else []
        results: list[tuple[str | None, str, str | None, str | None]] = [(None, "", None, None)] * len(items)
        for (index, _), execution in zip(wanted, executions):
            problem, _, starts, code_start = items[index]
            failed = check_failed(problem, execution)
            if not failed and problem.kind == MULTI_TURN:  # it ran: what it printed means nothing here
                results[index] = ("ran", "", None, None)
                continue
            results[index] = (execution.status, execution.reason[:400], error_type(execution) if failed else None,
                              feedback_text(self.settings.mode, problem, execution,
                                            turn_line(execution, starts, code_start)))
        return results

    def run_group(self, generator: ConversationGenerator, units: list[Unit]) -> list[Conversation]:
        """Every turn of ``units``, each conversation at its own pace: a step generates, in one batch,
        whatever each unfinished conversation needs next (a repair of its turn, or its next turn), then
        checks those attempts together. A conversation that needs no repair goes on to its next turn in
        the step where others repair theirs, instead of waiting for them; the batches shrink as
        conversations finish. The steps depend only on the group and the model's answers, and every
        request's seed only on (unit, turn, round), so results do not depend on the number of processes
        or on resumption."""
        conversations = [generator.start(unit) for unit in units]
        # Per conversation: (turn, repair) to generate next (repair: (round, feedback), None for the first
        # attempt), or None when it is done.
        todo: list[tuple[int, tuple[int, str] | None] | None] = [(0, None)] * len(conversations)
        while ready := [i for i, step in enumerate(todo) if step is not None]:
            steps = [todo[i] for i in ready]
            generator.answer([conversations[i] for i in ready], [turn for turn, _ in steps],  # type: ignore[misc]
                             [repair for _, repair in steps])  # type: ignore[misc]
            # The check of the program so far means something only while the turns before passed it.
            checkable = [i for i in ready if todo[i][0] == 0  # type: ignore[index]
                         or _checks_passed(conversations[i].attempts[todo[i][0] - 1][-1])]  # type: ignore[index]
            outcomes = self.check([(conversations[i].unit.problem, conversations[i].program,
                                    tuple(conversations[i].turn_line_starts), _code_start(conversations[i]))
                                   for i in checkable])
            for i, outcome in zip(checkable, outcomes):
                attempt = conversations[i].attempts[-1][-1]
                attempt.check, attempt.check_reason, attempt.error_type, attempt.feedback = outcome
            for i in ready:
                turn = len(conversations[i].attempts) - 1
                attempt = conversations[i].attempts[turn][-1]
                if attempt.feedback and attempt.round < self.max_repairs:
                    todo[i] = (turn, (attempt.round + 1, attempt.feedback))
                elif turn + 1 < generator.turn_count(conversations[i].unit):
                    todo[i] = (turn + 1, None)
                else:
                    todo[i] = None
        return conversations


def _code_start(conversation: Conversation) -> int:
    """The program's line where the latest turn's own code starts (after its comment, in the base format)."""
    attempt = conversation.attempts[-1][-1]
    return attempt.line_starts[-1] + attempt.text.count("\n")


def _checks_passed(attempt: Attempt) -> bool:
    """Whether the program with this attempt ran (its check raised nothing)."""
    return attempt.check is not None and attempt.error_type is None

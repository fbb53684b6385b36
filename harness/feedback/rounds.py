"""Round-wise verdicts of a feedback run: the hidden tests' verdict of each conversation's program after every
repair round, and what its sample line records about the repairs."""

from __future__ import annotations

from typing import Any

from harness.execution.executor import Executor
from harness.execution.jobs import job_for
from harness.execution.problem_limits import TimeLimits
from harness.generation.conversations import Attempt, Conversation
from harness.suites.problems import MULTI_TURN
from sandbox.pool import Execution, Job


def round_program(conversation: Conversation, repair_round: int) -> Conversation:
    """The program the conversation would score with at most ``repair_round`` repairs per turn: each
    turn's attempt of that round, or its last if it needed fewer. (For a multi-turn problem, the turns
    after a repaired one were generated after the repair: the round-r program is those turns with the
    earlier attempts put back, which is what a run stopping at round r would have scored only where the
    later turns do not depend on the repair.)"""
    chosen = [attempts[min(repair_round, len(attempts) - 1)] for attempts in conversation.attempts]
    if conversation.unit.problem.kind != MULTI_TURN:
        return Conversation(conversation.unit, chosen[0].program, turn_line_starts=[1])
    rebuilt = Conversation(conversation.unit, chosen[0].before if chosen else conversation.program)
    for attempt in chosen:
        rebuilt.add_turn(attempt.text, attempt.record.completion)
    return rebuilt


def execute_rounds(conversations: list[Conversation], executor: Executor, limits: TimeLimits,
                   max_repairs: int) -> tuple[list[Execution], list[dict[str, Any]]]:
    """The hidden tests' verdict after every round 0..R (a round that changed nothing shares the previous
    round's), each sample's final verdict (round R's), and what its line records about the repairs."""
    programs = [[round_program(c, r) for r in range(max_repairs + 1)] for c in conversations]
    jobs: list[Job] = []
    slots: list[list[int]] = []
    for rounds in programs:
        slots.append([])
        for r, program in enumerate(rounds):
            if r and program.program == rounds[r - 1].program:
                slots[-1].append(slots[-1][-1])
            else:
                slots[-1].append(len(jobs))
                jobs.append(job_for(program, limits))
    executions = executor.run(jobs)
    finals, extras = [], []
    for conversation, indices in zip(conversations, slots):
        verdicts = [executions[i] for i in indices]
        finals.append(verdicts[-1])
        extras.append({"repair_round": max(len(a) for a in conversation.attempts) - 1,
                       "feedback": {
                           "calls": sum(len(a) for a in conversation.attempts),
                           "calls_by_round": [sum(min(r + 1, len(a)) for a in conversation.attempts)
                                              for r in range(max_repairs + 1)],
                           "rounds": [{"passed": v.passed, "status": v.status, "reason": v.reason[:400]}
                                      for v in verdicts],
                           "attempts": [[_attempt_record(a) for a in attempts] for attempts in conversation.attempts],
                       }})
    return finals, extras


def _attempt_record(attempt: Attempt) -> dict[str, Any]:
    record = attempt.record
    return {"round": attempt.round, "prompt": record.prompt, "raw": record.raw, "completion": record.completion,
            "new_tokens": record.new_tokens,
            **({"reasoning_tokens": record.reasoning_tokens} if record.reasoning_tokens is not None else {}),
            **({"reasoning_over_budget": True} if record.reasoning_over_budget else {}),
            "check": attempt.check, "check_reason": attempt.check_reason, "error_type": attempt.error_type,
            "feedback": attempt.feedback}

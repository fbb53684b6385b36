"""Driving conversations: units of work, turn-by-turn generation, and the programs they accumulate.

A unit is (problem, test case, sample index). Units are cut into batch groups of consecutive units in
canonical order; inside a group every conversation that has reached turn t is generated together (in
feedback mode, ``harness.feedback.checker.Checker`` schedules the group's turns and repairs instead).
Groups are fixed by the canonical order and the batch size only, never by the number of processes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from harness.errors import InputError
from harness.generation.backend import Backend, BackendError, GenerationRequest, GenerationResult, SamplingParams
from harness.generation.feedback_format import render, split_reasoning
from harness.generation.prompt_formats import BaseCompletionFormat, ChatFormat, extract_code, extraction_outcome
from harness.generation.truncation import INFILLING_STOP
from harness.suites.problems import CODE, MULTI_TURN, Problem


class Checker(Protocol):
    """Feedback mode (``harness.feedback.checker.Checker``): it schedules a group's turns and repairs, using
    the generator's ``start``, ``turn_count`` and ``answer``."""

    max_repairs: int

    def run_group(self, generator: ConversationGenerator, units: list[Unit]) -> list[Conversation]:
        """Every turn of ``units``, each attempt checked and repaired where the check has feedback."""


@dataclass(frozen=True)
class Unit:
    problem: Problem
    case: int
    sample: int

    @property
    def uid(self) -> str:
        return f"{self.problem.id}/case{self.case}/sample{self.sample}"


def units_for(problems: Iterable[Problem], n: int) -> list[Unit]:
    """All units in canonical order: problem, test case, sample."""
    return [Unit(problem, case, sample) for problem in problems for case in range(problem.num_cases)
            for sample in range(n)]


def unit_seed(run_seed: int, uid: str, turn: int, repair_round: int = 0) -> int:
    """A turn's seed; a repair (round r > 0) has its own, so that no attempt depends on how many others the
    run made before it (round 0 keeps the seed of a run without feedback)."""
    key = f"{run_seed}:{uid}:{turn}" + (f":repair{repair_round}" if repair_round else "")
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


@dataclass
class TurnRecord:
    prompt: str
    raw: str
    completion: str
    prompt_tokens: int = 0
    new_tokens: int = 0
    prompt_truncated: bool = False
    prompt_tokens_computed: int | None = None
    reasoning_tokens: int | None = None  # a thinking model's reasoning, taken out before the code
    reasoning_over_budget: bool = False  # it reasoned past --max-reasoning-tokens: its answer was not used
    extraction: str | None = None  # a chat reply: how its code was taken (prompt_formats.extraction_outcome)


@dataclass
class Attempt:
    """One attempt at a turn in feedback mode: round 0 is the first answer, round r the r-th repair. ``text``
    is what the turn adds to the program before the completion, ``program`` the program with this attempt;
    ``check`` is how the check after it ended (None: nothing to check), ``feedback`` what the model was then
    told (None: nothing, so no repair followed)."""

    round: int
    record: TurnRecord
    text: str
    before: str  # the program before the turn (for a code prompt, the prompt)
    program: str
    line_starts: tuple[int, ...]
    check: str | None = None
    check_reason: str = ""
    error_type: str | None = None
    feedback: str | None = None


@dataclass
class Conversation:
    unit: Unit
    program: str  # the program so far: what the sandbox runs
    turns: list[TurnRecord] = field(default_factory=list)
    turn_line_starts: list[int] = field(default_factory=list)
    messages: list[dict[str, str]] = field(default_factory=list)  # chat formats: the conversation so far
    attempts: list[list[Attempt]] = field(default_factory=list)  # feedback mode: per turn, every attempt

    def add_turn(self, turn_text: str, completion: str) -> None:
        """Append one multi-turn exchange (the turn's comment, if any, and its code, then a blank line),
        remembering the line where the turn starts."""
        self.turn_line_starts.append(self.program.count("\n") + 1)
        self.program += f"{turn_text}{completion}\n\n"

    def take_back_turn(self, before: str) -> None:
        """Undo the last turn (its record and line start), the program going back to ``before`` (a repair)."""
        self.program = before
        del self.turn_line_starts[len(self.turn_line_starts) - 1:]
        self.turns.pop()


class ConversationGenerator:
    """Generates every turn of a set of units with one backend and prompt format."""

    def __init__(self, backend: Backend, sampling: SamplingParams, seed: int, program_prefix: str,
                 prompt_format: BaseCompletionFormat | ChatFormat | None = None, max_new_tokens: int | None = None,
                 max_reasoning_tokens: int | None = None, suffix_first: bool = False):
        self.backend = backend
        self.suffix_first = suffix_first  # infilling in suffix-prefix-middle order (--infilling-mode spm)
        self.sampling = sampling
        self.seed = seed
        self.program_prefix = program_prefix
        self.format = prompt_format or BaseCompletionFormat()
        self.max_new_tokens = max_new_tokens
        self.max_reasoning_tokens = max_reasoning_tokens
        self.checker: Checker | None = None  # feedback mode (``harness.feedback``)

    def start(self, unit: Unit) -> Conversation:
        problem = unit.problem
        if problem.kind == CODE:
            return Conversation(unit, problem.program_head, turn_line_starts=[1])
        return Conversation(unit, self.program_prefix)

    def turn_count(self, unit: Unit) -> int:
        return len(unit.problem.turns) if unit.problem.kind == MULTI_TURN else 1

    def _request(self, conversation: Conversation, turn: int,
                 repair: tuple[int, str] | None = None) -> tuple[GenerationRequest, str]:
        """The request for ``turn`` and the text it adds to the program before the completion (the turn's
        comment in the base format, nothing in the chat format). ``repair`` is (round, feedback) for a
        repair of the turn's last attempt (``harness.generation.feedback_format``'s templates)."""
        unit = conversation.unit
        problem = unit.problem
        multi_turn = problem.kind == MULTI_TURN
        if multi_turn:
            turn_prompt = problem.filled_turns(unit.case)[turn]
            references = problem.filled_references(unit.case)
            reference = references[turn] if references else None
            limit = problem.turn_max_new_tokens(turn)
        else:
            turn_prompt, reference, limit = "", problem.reference, problem.max_new_tokens
        if self.backend.requires_reference and reference is None:
            raise InputError("the reference backend needs a reference solution", file=problem.source,
                             problem=problem.id, field="reference")
        common = {"max_new_tokens": self.max_new_tokens or limit,
                  "seed": unit_seed(self.seed, unit.uid, turn, repair[0] if repair else 0),
                  "reference": reference, "conversation": unit.uid,
                  "continues": turn + 1 < self.turn_count(unit)}
        if problem.kind == CODE and problem.suffix:
            if not self.backend.supports_infilling:
                raise InputError("this model cannot fill in the middle, which the infilling suites need (Code "
                                 "Llama 7B/13B can)", file=problem.source, problem=problem.id, field="model")
            # Infilling uses the model's prefix-suffix-middle tokens, whatever its chat format.
            return GenerationRequest(prompt=problem.prompt, suffix=problem.suffix, suffix_first=self.suffix_first,
                                     stop=INFILLING_STOP, **common), ""
        if isinstance(self.format, ChatFormat):
            fmt = self.format
            content = (render("chat_turn" if multi_turn else "chat_code", repair[1], comment=False) if repair
                       else fmt.user_message(problem, turn_prompt, turn))
            messages = conversation.messages + [{"role": "user", "content": content}]
            if self.max_reasoning_tokens:  # the reasoning's budget comes on top of the answer's
                common["max_new_tokens"] += self.max_reasoning_tokens
            return GenerationRequest(prompt=messages[-1]["content"], messages=messages,
                                     stop=fmt.stop_rule(problem), **common), ""
        text = self.format.turn_text(turn_prompt) if multi_turn else ""
        # A code prompt's model sees the whole prompt, also where the program does not start with it (a
        # few-shot text prompt, MBPP 3-shot's).
        prompt = conversation.program + text if multi_turn else problem.prompt
        if repair:  # the program before the turn, the failed attempt, the feedback, the turn again
            failed = conversation.attempts[turn][-1]
            block = render("base_turn" if multi_turn else "base_code", repair[1], comment=True)
            again = text if multi_turn else problem.prompt  # the turn's comment, or the prompt
            prompt = failed.before + text + failed.record.completion + "\n\n" + block + again
        return GenerationRequest(prompt=prompt,
                                 stop=self.format.stop_rule(problem), **common), text

    def _completion(self, request: GenerationRequest, raw: str, problem: Problem) -> str:
        # Reference solutions are used as written: published ones (MBPP's) are not laid out for stop
        # sequences, and `validate` checks the core suite's against truncation separately. An infilled
        # middle ends at <EOT> and is used whole.
        if self.backend.requires_reference or request.suffix is not None:
            return raw
        if request.messages is not None:
            return extract_code(split_reasoning(raw)[0])
        return self.format.truncate(raw, problem)

    def _extraction(self, request: GenerationRequest, raw: str) -> str | None:
        """For a chat reply whose code was extracted (as ``_completion`` decides), how it was."""
        if request.messages is None or self.backend.requires_reference or request.suffix is not None:
            return None
        return extraction_outcome(split_reasoning(raw)[0])

    def _reasoning_tokens(self, request: GenerationRequest, result: GenerationResult) -> int | None:
        """Tokens a chat model spent thinking (``<think>`` blocks or the server's ``reasoning_content``):
        the server's count where it gives one, else the tokenizer's; None when it did not think."""
        if request.messages is None:
            return None
        reasoning = result.reasoning + split_reasoning(result.text)[1]
        if result.reasoning_tokens is not None:
            return result.reasoning_tokens
        if not reasoning:
            return None
        tokenizer = getattr(self.backend, "tokenizer", None)
        return len(tokenizer.encode(reasoning, add_special_tokens=False)) if tokenizer is not None else None

    def answer(self, conversations: list[Conversation], turns: int | list[int],
               repairs: list[tuple[int, str] | None] | None = None) -> None:
        """Generate, in one batch, ``turns`` (one for all, or one per conversation) of the conversations
        given (a repair where ``repairs`` says so) and add the answers to them. ``repairs`` is None without
        feedback: then nothing but the turn records is kept."""
        turn_of = turns if isinstance(turns, list) else [turns] * len(conversations)
        built = [self._request(c, turn_of[i], repairs[i] if repairs else None) for i, c in enumerate(conversations)]
        results = _checked(self.backend, self.backend.generate([request for request, _ in built], self.sampling),
                           len(built))
        for index, (conversation, (request, text), result) in enumerate(zip(conversations, built, results)):
            turn = turn_of[index]
            problem = conversation.unit.problem
            repair = repairs[index] if repairs else None
            before = conversation.attempts[turn][0].before if repair else conversation.program
            completion = self._completion(request, result.text, problem)
            reasoning_tokens = self._reasoning_tokens(request, result)
            over_budget = (self.max_reasoning_tokens is not None and reasoning_tokens is not None
                           and reasoning_tokens > self.max_reasoning_tokens)
            if over_budget:  # as a reply cut off while thinking: no answer
                completion = ""
            if request.messages is not None:
                conversation.messages = request.messages + [
                    {"role": "assistant", "content": ChatFormat.assistant_message(completion)}]
            if repair:  # the attempt replaces the turn's previous one in the program
                conversation.take_back_turn(before)
            if problem.kind == MULTI_TURN:
                conversation.add_turn(text, completion)
            elif request.suffix is not None:
                conversation.program = problem.prompt + completion + problem.suffix
            elif request.messages is not None:
                conversation.program = ChatFormat.program_for_function(problem, completion)
            else:
                conversation.program = problem.program_head + completion
            if problem.kind != MULTI_TURN:
                conversation.turn_line_starts[:] = [1]
            record = TurnRecord(prompt=text or request.prompt, raw=result.text, completion=completion,
                                prompt_tokens=result.prompt_tokens, new_tokens=result.new_tokens,
                                prompt_truncated=result.prompt_truncated,
                                prompt_tokens_computed=result.prompt_tokens_computed,
                                reasoning_tokens=reasoning_tokens, reasoning_over_budget=over_budget,
                                extraction=self._extraction(request, result.text))
            conversation.turns.append(record)
            if repairs is not None:
                if not repair:
                    conversation.attempts.append([])
                conversation.attempts[turn].append(Attempt(
                    round=repair[0] if repair else 0, record=record, text=text,
                    before=before if problem.kind == MULTI_TURN else problem.prompt,
                    program=conversation.program, line_starts=tuple(conversation.turn_line_starts)))

    def run_group(self, units: list[Unit], checker: Checker | None = None) -> list[Conversation]:
        """Every turn of ``units``, each turn of all conversations that have it in one batch; with a
        ``checker`` (feedback mode) the checker schedules the turns and repairs."""
        checker = checker or self.checker
        if checker is not None:
            return checker.run_group(self, units)
        conversations = [self.start(unit) for unit in units]
        for turn in range(max(self.turn_count(u) for u in units)):
            self.answer([c for c in conversations if turn < self.turn_count(c.unit)], turn)
        return conversations


# Group size for ``--batch-size auto``: the backend halves the batches it generates on out-of-memory.
AUTO_BATCH_SIZE = 64


def batch_groups(units: list[Unit], batch_size: int | str) -> list[list[Unit]]:
    """Consecutive units in canonical order, ``batch_size`` at a time."""
    size = AUTO_BATCH_SIZE if batch_size == "auto" else max(1, int(batch_size))
    return [units[i:i + size] for i in range(0, len(units), size)]


def _checked(backend: Backend, results: list[GenerationResult], asked: int) -> list[GenerationResult]:
    """A backend's answers, one per request, each with text: a short list would otherwise score the missing
    samples as failures without a word (``zip`` stops at the shorter)."""
    name = getattr(backend, "name", type(backend).__name__)
    if not isinstance(results, list) or len(results) != asked:
        count = len(results) if isinstance(results, (list, tuple)) else type(results).__name__
        raise BackendError(f"backend {name} answered {count} result(s) for {asked} request(s); a backend must "
                           "answer every request, in order")
    if not all(isinstance(result, GenerationResult) and isinstance(result.text, str) for result in results):
        raise BackendError(f"backend {name} answered something other than GenerationResult(text=str)")
    return results

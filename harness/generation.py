"""Driving conversations: units of work, turn-by-turn generation, and the programs they accumulate.

A unit is (problem, test case, sample index). Units are cut into batch groups of consecutive units in
canonical order; inside a group every conversation that has reached turn t is generated together.
Groups are fixed by the canonical order and the batch size only, never by the number of processes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from harness.backends.base import Backend, GenerationRequest, SamplingParams
from harness.errors import InputError
from harness.problems import CODE, MULTI_TURN, Problem
from harness.prompting import BaseCompletionFormat, ChatFormat, extract_code
from harness.truncation import StopSequenceDetector


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


def unit_seed(run_seed: int, uid: str, turn: int) -> int:
    digest = hashlib.sha256(f"{run_seed}:{uid}:{turn}".encode()).digest()
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


@dataclass
class Conversation:
    unit: Unit
    history: str
    turns: list[TurnRecord] = field(default_factory=list)
    turn_line_starts: list[int] = field(default_factory=list)
    messages: list[dict[str, str]] = field(default_factory=list)  # chat formats: the conversation so far

    @property
    def program(self) -> str:
        return self.history

    def add_turn(self, turn_text: str, completion: str) -> None:
        """Append one multi-turn exchange (the turn's comment, if any, and its code, then a blank line),
        remembering the line where the turn starts."""
        self.turn_line_starts.append(self.history.count("\n") + 1)
        self.history += f"{turn_text}{completion}\n\n"


class ConversationRunner:
    """Generates every turn of a set of units with one backend and prompt format."""

    def __init__(self, backend: Backend, sampling: SamplingParams, seed: int, program_prefix: str,
                 prompt_format: BaseCompletionFormat | ChatFormat | None = None, max_new_tokens: int | None = None):
        self.backend = backend
        self.sampling = sampling
        self.seed = seed
        self.program_prefix = program_prefix
        self.format = prompt_format or BaseCompletionFormat()
        self.max_new_tokens = max_new_tokens

    def _start(self, unit: Unit) -> Conversation:
        problem = unit.problem
        if problem.kind == CODE:
            return Conversation(unit, problem.program_head, turn_line_starts=[1])
        return Conversation(unit, self.program_prefix)

    def _turn_count(self, unit: Unit) -> int:
        return len(unit.problem.turns) if unit.problem.kind == MULTI_TURN else 1

    def _request(self, conversation: Conversation, turn: int) -> tuple[GenerationRequest, str]:
        """The request for ``turn`` and the text it adds to the program before the completion (the turn's
        comment in the base format, nothing in the chat format)."""
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
        common = {"max_new_tokens": self.max_new_tokens or limit, "seed": unit_seed(self.seed, unit.uid, turn),
                  "reference": reference, "conversation": unit.uid,
                  "continues": turn + 1 < self._turn_count(unit)}
        if problem.kind == CODE and problem.suffix:
            if not self.backend.supports_infilling:
                raise InputError("this model cannot fill in the middle, which the infilling suites need (Code "
                                 "Llama 7B/13B can)", file=problem.source, problem=problem.id, field="model")
            # Infilling uses the model's prefix-suffix-middle tokens, whatever its chat format.
            return GenerationRequest(prompt=problem.prompt, suffix=problem.suffix,
                                     new_stop_detector=lambda: StopSequenceDetector(()), **common), ""
        if isinstance(self.format, ChatFormat):
            fmt = self.format
            messages = conversation.messages + [{"role": "user",
                                                 "content": fmt.user_message(problem, turn_prompt, turn)}]
            return GenerationRequest(prompt=messages[-1]["content"], messages=messages,
                                     new_stop_detector=lambda: fmt.stop_detector(problem), **common), ""
        text = self.format.turn_text(turn_prompt) if multi_turn else ""
        return GenerationRequest(prompt=conversation.history + text,
                                 new_stop_detector=lambda: self.format.stop_detector(problem), **common), text

    def _completion(self, request: GenerationRequest, raw: str, problem: Problem) -> str:
        # Reference solutions are used as written: published ones (MBPP's) are not laid out for stop
        # sequences, and `validate` checks the core suite's against truncation separately. An infilled
        # middle ends at <EOT> and is used whole.
        if self.backend.requires_reference or request.suffix is not None:
            return raw
        if request.messages is not None:
            return extract_code(raw)
        return self.format.truncate(raw, problem)

    def run_group(self, units: list[Unit]) -> list[Conversation]:
        conversations = [self._start(unit) for unit in units]
        for turn in range(max(self._turn_count(u) for u in units)):
            active = [c for c in conversations if turn < self._turn_count(c.unit)]
            built = [self._request(c, turn) for c in active]
            results = self.backend.generate([request for request, _ in built], self.sampling)
            for conversation, (request, text), result in zip(active, built, results):
                problem = conversation.unit.problem
                completion = self._completion(request, result.text, problem)
                if request.messages is not None:
                    conversation.messages = request.messages + [
                        {"role": "assistant", "content": ChatFormat.assistant_message(completion)}]
                if problem.kind == MULTI_TURN:
                    conversation.add_turn(text, completion)
                elif request.suffix is not None:
                    conversation.history = problem.prompt + completion + problem.suffix
                elif request.messages is not None:
                    conversation.history = ChatFormat.program_for_function(problem, completion)
                else:
                    conversation.history = problem.program_head + completion
                conversation.turns.append(TurnRecord(prompt=text or request.prompt, raw=result.text,
                                                     completion=completion, prompt_tokens=result.prompt_tokens,
                                                     new_tokens=result.new_tokens,
                                                     prompt_truncated=result.prompt_truncated,
                                                     prompt_tokens_computed=result.prompt_tokens_computed))
        return conversations

    def run(self, groups: Iterable[list[Unit]]) -> Iterator[Conversation]:
        for group in groups:
            yield from self.run_group(group)


# Group size for ``--batch-size auto``: the backend halves the batches it generates on out-of-memory.
AUTO_BATCH_SIZE = 64


def batch_groups(units: list[Unit], batch_size: int | str) -> list[list[Unit]]:
    """Consecutive units in canonical order, ``batch_size`` at a time."""
    size = AUTO_BATCH_SIZE if batch_size == "auto" else max(1, int(batch_size))
    return [units[i:i + size] for i in range(0, len(units), size)]

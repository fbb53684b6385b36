"""What a base model is asked for a code prompt: the whole prompt, also where the program does not start
with it (MBPP 3-shot's few-shot text, which generated from an empty prompt before)."""

from __future__ import annotations

from harness.generation.backend import GenerationRequest, GenerationResult, SamplingParams
from harness.generation.conversations import ConversationGenerator, Unit
from harness.suites.problems import CODE, Problem


class Recorder:
    """A backend that records its requests and answers with a fixed completion."""

    name = "recorder"
    requires_reference = supports_infilling = supports_chat = prefers_chat = False

    def __init__(self) -> None:
        self.requests: list[GenerationRequest] = []

    def identity(self) -> dict:
        return {"backend": self.name}

    def generate(self, requests: list[GenerationRequest], sampling: SamplingParams) -> list[GenerationResult]:
        self.requests += requests
        return [GenerationResult(text="def f():\n    return 1\n[DONE]") for _ in requests]


def test_a_few_shot_prompt_is_sent_although_the_program_is_the_completion_alone():
    few_shot = Problem(id="p", category="c", kind=CODE, source="s", prompt="Example ... [BEGIN]\n", entry_point="",
                       test="assert f() == 1\n", stop_sequences=("[DONE]",), prompt_in_program=False)
    in_program = Problem(id="q", category="c", kind=CODE, source="s", prompt="def f():\n", entry_point="f",
                         test="def check(candidate):\n    assert candidate() == 1\n")
    backend = Recorder()
    conversations = ConversationGenerator(backend, SamplingParams(), 0, "").run_group(
        [Unit(few_shot, 0, 0), Unit(in_program, 0, 0)])
    assert [r.prompt for r in backend.requests] == ["Example ... [BEGIN]\n", "def f():\n"]
    assert conversations[0].program == "def f():\n    return 1\n"  # the completion alone, cut at [DONE]
    assert conversations[1].program.startswith("def f():\ndef f():")

"""Model families: detection, the exact tokens each prompt format produces, chat turns, loading options.

Token expectations are written as token strings (SentencePiece pieces, ``▁`` for a space, ``<0x0A>`` for a
newline byte), so they check the layout (which special tokens, where, how many) independently of which
merges the tiny tokenizers happened to learn.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

from conftest import JsonEndpoint, needs_shared_data, run_cli
from harness.backends.huggingface.families import detect_family
from harness.backends.huggingface.backend import HuggingFaceBackend
from harness.backends.huggingface.tiny_models import tiny_model_path
from harness.generation.backend import GenerationRequest
from harness.generation.prompt_formats import extract_code, extraction_outcome
from harness.suites.problems import CODE, MULTI_TURN
from harness.suites.registry import resolve_suite


@pytest.fixture(scope="module")
def backends() -> dict[str, HuggingFaceBackend]:
    return {name: HuggingFaceBackend(str(tiny_model_path(name)), device="cpu")
            for name in ("tiny-codegen", "tiny-llama", "tiny-llama-instruct")}


def _encode(backend: HuggingFaceBackend, prompt: str = "", messages=None, suffix=None) -> list[str]:
    request = GenerationRequest(prompt=prompt, max_new_tokens=1, seed=0,
                                messages=messages, suffix=suffix)
    return backend.tokenizer.convert_ids_to_tokens(backend.encode(request))


def test_families_are_detected_from_config_tokenizer_and_name(backends):
    codegen, llama, instruct = (backends[n] for n in ("tiny-codegen", "tiny-llama", "tiny-llama-instruct"))
    assert (codegen.family.family, codegen.family.adds_bos, codegen.family.chat_template) == ("codegen", False, False)
    assert (llama.family.family, llama.family.variant, llama.family.infilling) == ("codellama", "base", True)
    assert (instruct.family.variant, instruct.family.chat_template) == ("instruct", True)
    named = detect_family("Salesforce/codegen-2B-multi", codegen.model.config, codegen.tokenizer)
    assert (named.family, named.variant, named.size) == ("codegen", "multi", "2B")
    mono = detect_family("/models/codegen-350M-mono", codegen.model.config, codegen.tokenizer)
    assert (mono.variant, mono.size) == ("mono", "350M")
    python = detect_family("codellama/CodeLlama-13b-Python-hf", llama.model.config, llama.tokenizer)
    assert (python.family, python.variant, python.size) == ("codellama", "python", "13b")
    assert codegen.identity()["family"]["family"] == "codegen"
    assert codegen.supports_chat is False and instruct.prefers_chat is True


def test_codegen_plain_prompt_has_no_bos_and_ends_text_at_endoftext(backends):
    backend = backends["tiny-codegen"]
    prompt = "# add one\nx = 1\n"
    tokens = _encode(backend, prompt)
    assert backend.tokenizer.convert_tokens_to_string(tokens) == prompt
    assert "<|endoftext|>" not in tokens
    assert backend.eos_ids == {backend.tokenizer.convert_tokens_to_ids("<|endoftext|>")}
    assert backend.tokenizer.pad_token == "<|endoftext|>"  # pad set, for batching


def test_code_llama_plain_prompt_has_exactly_one_bos(backends):
    tokens = _encode(backends["tiny-llama"], "x = 1")
    assert tokens[0] == "<s>" and tokens.count("<s>") == 1
    assert "".join(tokens) == "<s>▁x▁=▁1"


def test_code_llama_infilling_layout(backends):
    tokens = _encode(backends["tiny-llama"], "def f():\n", suffix="\n    return 1\n")
    # <PRE> {prefix} <SUF>{suffix} <MID>: the prefix has SentencePiece's leading space, the suffix none.
    assert "".join(tokens) == "<s>▁<PRE>▁def▁f():<0x0A>▁<SUF><0x0A>▁▁▁▁return▁1<0x0A>▁<MID>"


def test_code_llama_instruct_chat_layout(backends):
    messages = [{"role": "user", "content": "add a"},
                {"role": "assistant", "content": "```python\nx = 1\n```"},
                {"role": "user", "content": "print it"}]
    tokens = _encode(backends["tiny-llama-instruct"], messages=messages)
    assert "".join(tokens) == ("<s>[INST]▁add▁a▁[/INST]▁```python<0x0A>x▁=▁1<0x0A>```▁</s>"
                               "<s>[INST]▁print▁it▁[/INST]")
    assert tokens.count("<s>") == 2  # the template's own <s>, never a second one from the tokenizer


def test_chat_format_is_refused_for_a_model_without_a_template(tmp_path):
    result = run_cli("run", "--model", "tiny-codegen", "--prompt-format", "chat", "--limit", "1",
                     "--results-dir", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "prompt_format" in errors[0] and "chat template" in errors[0]


@pytest.mark.parametrize("reply, code", [
    ("Here you go:\n```python\nx = 1\n```\nDone.", "x = 1"),
    ("```py\nimport os\n```\nthen\n```\nprint(os.sep)\n```", "import os\nprint(os.sep)"),
    ("```bash\nls\n```\n```python\ny = 2\n```", "y = 2"),
    ("```python\ndef f():\n    return 1", "def f():\n    return 1"),  # cut off by the budget
    ("x = 3\nprint(x)\n", "x = 3\nprint(x)"),  # no fences: the reply is code
    ("```text\nno code here\n```", ""),
    ("  ```python\n  a = [1,\n       2]\n  ```", "  a = [1,\n       2]"),
])
def test_extract_code(reply, code):
    assert extract_code(reply) == code


@pytest.mark.parametrize("reply, outcome", [
    ("Here you go:\n```python\nx = 1\n```\nDone.", "block"),
    ("```py\nimport os\n```\nthen\n```\nprint(os.sep)\n```", "blocks"),
    ("```bash\nls\n```\n```python\ny = 2\n```", "block"),
    ("```python\ndef f():\n    return 1", "cut_block"),
    ("```python\na = 1\n```\n```python\n", "cut_block"),
    ("x = 3\nprint(x)\n", "unfenced"),
    ("```text\nno code here\n```", "no_code"),
    ("", "no_code"),
])
def test_extraction_outcome(reply, outcome):
    """How the code was taken from a chat reply, recorded with every chat turn."""
    assert extraction_outcome(reply) == outcome


def test_bitsandbytes_missing_is_a_one_line_error(tmp_path):
    if importlib.util.find_spec("bitsandbytes") is not None:
        pytest.skip("bitsandbytes is installed here")
    result = run_cli("run", "--model", "tiny-llama", "--load-in", "4bit", "--limit", "1",
                     "--results-dir", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "bitsandbytes" in errors[0] and "load_in" in errors[0]


def test_loading_options_reach_the_model_and_long_prompts_are_cut_not_fatal(tmp_path):
    result = run_cli("run", "--model", "tiny-llama", "--attn-implementation", "eager", "--max-length", "40",
                     "--limit", "2", "--max-new-tokens", "8", "--temperature", "0", "--results-dir", str(tmp_path),
                     "--run-name", "short")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "short" / "summary.json").read_text())
    assert summary["model"]["attn_implementation"] == "eager"
    assert summary["prompt_format"] == "base" and summary["model"]["family"]["family"] == "codellama"
    lines = [json.loads(line) for line in (tmp_path / "short" / "samples.jsonl").read_text().splitlines()]
    assert any(turn.get("prompt_truncated") for line in lines for turn in line["turns"])
    bad = run_cli("run", "--model", "tiny-llama", "--attn-implementation", "no-such-kernel", "--limit", "1",
                  "--results-dir", str(tmp_path))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "attn_implementation" in bad.stderr


class ReferenceChatServer(JsonEndpoint):
    """A chat endpoint on 127.0.0.1 that answers like a well-behaved Instruct model: prose around a fenced
    block holding the problem's reference code for the current turn (found from the whole conversation so
    far: every user and assistant message, which must be exactly the expected ones)."""

    def __init__(self, answers: dict[tuple[tuple[str, str], ...], str]):
        self.answers = answers
        self.misses = 0
        super().__init__(self.reply)

    def reply(self, path: str, body: dict) -> tuple[int, dict]:
        conversation = tuple((m["role"], m["content"]) for m in body["messages"])
        code = self.answers.get(conversation)
        if code is None:
            self.misses += 1
            code = "raise SystemExit('unknown conversation')"
        text = f"Sure! Here is the code:\n\n```python\n{code}\n```\n\nIt does what you asked."
        return 200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
                     "usage": {"prompt_tokens": 1, "completion_tokens": 1}}


@pytest.mark.parametrize("suite_name, data", [("core", None), ("humaneval", "HumanEval.jsonl.gz")])
def test_chat_turns_with_reference_answers_pass_every_problem(tmp_path, suite_name, data):
    """Correctness of the chat path end to end: conversations, extraction, program assembly and scoring.
    Replies carrying the reference code in fences (a whole function restated, as Instruct models answer)
    pass every problem of the core suite and of HumanEval."""
    data_args = ["--data", str(needs_shared_data(data))] if data else []
    suite = resolve_suite(suite_name, data_args[1] if data else None)
    # The expected conversation, written out here rather than built with ChatFormat, so that a wrong
    # instruction, turn text or history fails this test.
    first_turn = ("Write a Python program step by step. Answer each step with one ```python code block that "
                  "continues the program written so far; do not repeat earlier code.\n\n")
    function = ("Complete the following Python code. Answer with the complete function in one ```python code "
                "block.\n\n```python\n")
    answers: dict[tuple[tuple[str, str], ...], str] = {}
    for problem in suite.problems:
        if problem.kind == MULTI_TURN:
            for case in range(problem.num_cases):
                history: tuple[tuple[str, str], ...] = ()
                for turn, (prompt, code) in enumerate(zip(problem.filled_turns(case),
                                                          problem.filled_references(case))):
                    history += (("user", (first_turn if turn == 0 else "") + prompt),)
                    answers[history] = code
                    history += (("assistant", "```python\n" + code.rstrip("\n") + "\n```"),)
        elif problem.kind == CODE and not problem.suffix:
            answers[(("user", function + problem.prompt + "```"),)] = problem.prompt + problem.reference
    with ReferenceChatServer(answers) as server:
        result = run_cli("run", "--suite", suite_name, *data_args, "--backend", "openai", "--base-url", server.url,
                         "--model", "any", "--prompt-format", "chat", "--concurrency", "16", "--temperature", "0",
                         "--results-dir", str(tmp_path), "--run-name", "chat-ref")
    assert result.returncode == 0, result.stderr[-2000:]
    assert server.misses == 0
    summary = json.loads((tmp_path / "chat-ref" / "summary.json").read_text())
    assert summary["prompt_format"] == "chat"
    samples = [json.loads(line) for line in (tmp_path / "chat-ref" / "samples.jsonl").read_text().splitlines()]
    assert {turn["extraction"] for sample in samples for turn in sample["turns"]} == {"block"}
    assert summary["overall"]["pass@1"] == 1.0 and summary["overall"]["problems"] >= 40, \
        summary["overall"]

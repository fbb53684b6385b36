"""The harness against llama.cpp's real OpenAI-compatible server (``llama-cpp-python[server]``) serving
SmolLM2-135M-Instruct's GGUF file on a free 127.0.0.1 port: a few problems through the completions endpoint
and through the chat endpoint, greedy; each sample's reply is the one a direct request gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli
from llama_server import LlamaServer, needs_llama_server

ENTRY_POINTS = {"core/he-running-max": "running_max", "core/he-roman": "to_roman"}
CODE_PROMPTS = ",".join(ENTRY_POINTS)


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory):
    gguf = needs_llama_server()
    with LlamaServer(gguf, tmp_path_factory.mktemp("llama-server") / "server.log") as server:
        yield server


def run_against(server: LlamaServer, out: Path, name: str, *extra: str) -> list[dict]:
    result = run_cli("run", "--suite", "core", "--backend", "openai", "--base-url", server.url, "--model",
                     "smollm2-135m-instruct", "--temperature", "0", "--concurrency", "2", "--results-dir", str(out),
                     "--run-name", name, *extra)
    assert result.returncode == 0, result.stderr[-3000:] + server.tail()
    summary = json.loads((out / name / "summary.json").read_text())
    assert summary["model"]["backend"] == "openai" and summary["model"]["base_url"] == server.url
    return [json.loads(line) for line in (out / name / "samples.jsonl").read_text().splitlines()]


def test_completions_format(llama, tmp_path):
    """Code prompts and a multi-turn problem through ``/v1/completions``: every turn is answered, and a
    code prompt's reply is what a direct greedy request with the same prompt, budget and stop strings gets."""
    samples = run_against(llama, tmp_path, "completions", "--problems", f"{CODE_PROMPTS},core/vowel-count",
                          "--max-new-tokens", "32")
    assert len(samples) == 2 + 4  # two code prompts, and vowel-count's four test cases
    assert all(turn["new_tokens"] > 0 and turn["raw"] for s in samples for turn in s["turns"])
    roman = next(s for s in samples if s["task_id"] == "core/he-roman")
    direct = llama.post("/completions", {"prompt": roman["turns"][0]["prompt"], "max_tokens": 32,
                                         "temperature": 0, "top_p": 1.0, "seed": roman["seed"] % 2**31,
                                         "stop": ["\ndef", "\nclass", "\nif", "\nprint"]})
    assert direct["choices"][0]["text"] == roman["turns"][0]["raw"]
    assert roman["program"].startswith(roman["turns"][0]["prompt"])


def test_chat_format(llama, tmp_path):
    """Code prompts through ``/v1/chat/completions`` (the GGUF's own chat template, applied by the server):
    the replies are fenced Python, the harness takes the code out of the fence and the program defines the
    entry point; each reply is what a direct greedy chat request with the same message gets."""
    samples = run_against(llama, tmp_path, "chat", "--problems", CODE_PROMPTS, "--prompt-format", "chat",
                          "--max-new-tokens", "128")
    assert len(samples) == 2
    for sample in samples:
        [turn] = sample["turns"]
        assert "```" in turn["raw"] and "```" not in turn["completion"] and turn["completion"].strip()
        assert f"def {ENTRY_POINTS[sample['task_id']]}(" in sample["program"]
        direct = llama.post("/chat/completions", {"messages": [{"role": "user", "content": turn["prompt"]}],
                                                  "max_tokens": 128, "temperature": 0, "top_p": 1.0,
                                                  "seed": sample["seed"] % 2**31})
        assert direct["choices"][0]["message"]["content"] == turn["raw"]

"""Execution feedback with real (tiny) models: tiny-codegen in the base format, in one, two and three
processes and through kill -9 and --resume (in another process count); tiny-llama-instruct through the chat
endpoint, replying with a <think> block. Every process computes with one intra-op thread (``--threads 1``)
under OMP_NUM_THREADS=1, as torchrun's processes do."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import ROOT, JsonEndpoint, run_cli
from harness.generation.backend import GenerationRequest, SamplingParams
from test_sharding import TIMING_FIELDS, torchrun

RUN = ["--model", "tiny-codegen", "--temperature", "0.8", "--num-samples", "2", "--limit", "4", "--batch-size", "3",
       "--max-new-tokens", "16", "--device", "cpu", "--seed", "7", "--threads", "1", "--no-verdict-cache"]
FEEDBACK = ["--feedback", "errors", "--max-repairs", "2"]
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # what torchrun() gives its processes


def samples(run_dir: Path) -> list[dict]:
    lines = (run_dir / "samples.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING_FIELDS} for line in lines]


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    out = tmp_path_factory.mktemp("feedback-single")
    result = run_cli("run", *RUN, *FEEDBACK, "--results-dir", str(out), "--run-name", "one", env_extra=ONE_THREAD)
    assert result.returncode == 0, result.stderr[-3000:]
    return out / "one"


def test_tiny_codegen_repairs_in_the_base_format(single, tmp_path):
    lines = samples(single)
    info = summary(single)["feedback"]
    assert info["mode"] == "errors" and info["max_repairs"] == 2 and len(info["rounds"]) == 3
    assert info["repairs"]["made"] > 0  # random weights: its programs fail, and get feedback
    repaired = [a for line in lines for turn in line["feedback"]["attempts"] for a in turn if a["round"] > 0]
    assert repaired and all(a["round"] <= 2 for a in repaired)
    # Round 0 is plain sampling: the first turn's first attempt is what a run without feedback samples.
    plain = run_cli("run", *RUN, "--results-dir", str(tmp_path), "--run-name", "plain")
    assert plain.returncode == 0, plain.stderr[-3000:]
    first = {line["unit"]: line["turns"][0]["raw"] for line in samples(tmp_path / "plain")}
    assert {line["unit"]: line["feedback"]["attempts"][0][0]["raw"] for line in lines} == first
    # The verdict is the last round's; the program ends with the last turn's last attempt.
    for line in lines:
        assert line["passed"] == line["feedback"]["rounds"][-1]["passed"]
        assert line["program"].endswith("".join(turn[-1]["completion"] + "\n\n"
                                                 for turn in line["feedback"]["attempts"][-1:]))


@pytest.mark.parametrize("processes", [2, 3])
def test_more_processes_give_identical_feedback_runs(single, tmp_path, processes):
    result = torchrun("run", *RUN, *FEEDBACK, "--results-dir", str(tmp_path), "--run-name", "many", processes=processes)
    assert result.returncode == 0, result.stderr[-3000:]
    assert samples(tmp_path / "many") == samples(single)
    assert summary(tmp_path / "many")["feedback"] == summary(single)["feedback"]
    # Group g goes to process g mod N: with at least N groups every process generated some of them.
    assert len({line["group"] for line in samples(single)}) >= processes
    ranks = summary(tmp_path / "many")["timings"]["processes"]
    assert sorted(p["rank"] for p in ranks) == list(range(processes))


def test_killed_feedback_run_resumes_to_the_same_result(single, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", *RUN, *FEEDBACK, "--results-dir",
                             str(tmp_path), "--run-name", "killed"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT), **ONE_THREAD},
                            start_new_session=True)
    progress = b""  # wait for the progress bar to count a written group, not for the clock
    while not any(int(done) >= 3 for done in re.findall(rb"(\d+)/\d+ \[", progress)):
        chunk = os.read(proc.stderr.fileno(), 4096)
        assert chunk, "the run ended before writing a group: " + progress.decode(errors="replace")[-2000:]
        progress += chunk
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert not (tmp_path / "killed" / "summary.json").exists()
    written = sum(p.read_text().count('"unit":') for p in (tmp_path / "killed" / "parts").glob("*.jsonl"))
    assert 3 <= written < len(samples(single))  # killed with groups written and groups to do
    refused = run_cli("run", *RUN, "--feedback", "tests", "--max-repairs", "2", "--results-dir", str(tmp_path),
                      "--run-name", "killed", "--resume")
    assert refused.returncode == 2 and "feedback" in refused.stderr
    result = torchrun("run", *RUN, *FEEDBACK, "--results-dir", str(tmp_path), "--run-name", "killed", "--resume",
                      processes=3)  # resumed in another process count
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming" in result.stderr
    assert samples(tmp_path / "killed") == samples(single)
    assert summary(tmp_path / "killed")["feedback"] == summary(single)["feedback"]


class ThinkingChatServer(JsonEndpoint):
    """``/v1/chat/completions`` answered by tiny-llama-instruct through its chat template, each reply
    preceded by a <think> block, whose tokens the usage reports as a reasoning model's server does."""

    THOUGHT = "<think>First define the variable, then ```python\nraise SystemExit``` no, print it.</think>\n"

    def __init__(self):
        from harness.backends.huggingface.backend import HuggingFaceBackend
        from harness.backends.huggingface.tiny_models import tiny_model_path

        self.backend = HuggingFaceBackend(str(tiny_model_path("tiny-llama-instruct")), device="cpu")
        self.thought_tokens = len(self.backend.tokenizer.encode(self.THOUGHT, add_special_tokens=False))
        self.lock = threading.Lock()
        super().__init__(self.reply)

    def reply(self, path: str, body: dict) -> tuple[int, dict]:
        with self.lock:  # the tiny model is not thread-safe
            result = self.backend.generate([GenerationRequest(
                prompt="", messages=body["messages"], max_new_tokens=body["max_tokens"], seed=body["seed"])],
                SamplingParams(temperature=body["temperature"], top_p=body["top_p"]))[0]
        return 200, {"choices": [{"index": 0, "message": {
            "role": "assistant", "content": self.THOUGHT + result.text}}],
            "usage": {"prompt_tokens": result.prompt_tokens,
                      "completion_tokens": result.new_tokens + self.thought_tokens,
                      "completion_tokens_details": {"reasoning_tokens": self.thought_tokens}}}


def test_tiny_llama_instruct_through_the_chat_endpoint_with_thinking(tmp_path):
    with ThinkingChatServer() as server:
        result = run_cli("run", "--backend", "openai", "--base-url", server.url, "--model", "tiny-llama-instruct",
                         "--prompt-format", "chat", "--limit", "2", "--max-new-tokens", "24", "--temperature", "0",
                         "--feedback", "errors", "--results-dir", str(tmp_path), "--run-name", "chat",
                         "--no-verdict-cache")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = samples(tmp_path / "chat")
    attempts = [a for line in lines for turn in line["feedback"]["attempts"] for a in turn]
    assert all("<think>" in a["raw"] for a in attempts)
    # The reasoning's fenced block is not code: it never reaches a completion or a program.
    assert not any("raise SystemExit" in a["completion"] or "<think>" in a["completion"] for a in attempts)
    assert not any("raise SystemExit" in line["program"] for line in lines)
    assert all(a["reasoning_tokens"] == server.thought_tokens for a in attempts)
    repairs = [b for b in server.bodies if b["messages"][-1]["content"].startswith("Running the program")]
    assert len(repairs) == summary(tmp_path / "chat")["feedback"]["repairs"]["made"] > 0
    # A repair sees the failed attempt (as the assistant's message) and then the error.
    assert all(b["messages"][-2]["role"] == "assistant" for b in repairs)

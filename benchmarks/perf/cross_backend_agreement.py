"""Cross-backend agreement on the same weights: two greedy runs of the same suite (say the Hugging Face backend
on a GGUF file dequantized to fp32, and llama.cpp's server on the same file through ``--backend openai``),
side by side: pass@1 of each, per-problem verdict agreement, identical replies, and for each problem whose
verdicts differ the first token where the two replies part and what makes them part.

    python benchmarks/perf/cross_backend_agreement.py RUN_A RUN_B [--first 40] \\
        [--tokenizer DIR] [--base-url http://127.0.0.1:8080/v1]

Replies are compared token by token with the tokenizer of DIR (default: RUN_A's model, a checkpoint folder),
which is also used to read each prompt as RUN_A's backend rendered it (its chat template). What parts them:
- ``template``: the two backends' prompts differ in length (the server's own chat-template code, or its
  tokenizer, rendered the conversation differently); the replies then differ for that reason first;
- ``stop``: one reply is a prefix of the other (one backend stopped where the other went on: its end-of-turn
  token, a stop string, or the token budget);
- ``numerics``: same prompt, and at the parting token both continuations are near the top of RUN_A's model
  (its logit margin between the two tokens is printed; with ``--base-url``, the server's log-probabilities of
  the two as well): the two engines' arithmetic (llama.cpp's quantized activations and kernels against fp32)
  tips a near tie;
- ``tokenization``: the texts agree up to a point that falls inside a token (the two tokenizers split the
  same text differently).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def load_run(folders: list[Path]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(the first folder's config.yaml, the first sample of each problem over the folders). A run still going
    is read from its part files (the problems it has finished)."""
    config = yaml.safe_load((folders[0] / "config.yaml").read_text())
    samples: dict[str, dict[str, Any]] = {}
    for folder in folders:
        files = [folder / "samples.jsonl"] if (folder / "samples.jsonl").exists() else sorted(folder.glob("parts/*.jsonl"))
        for file in files:
            for line in file.read_text().splitlines():
                try:
                    sample = json.loads(line)
                except ValueError:  # a line being written
                    continue
                if "task_id" in sample:
                    samples.setdefault(sample["task_id"], sample)
    order = sorted(samples, key=lambda task: (task.split("/")[0], int(task.split("/")[1]) if task.split("/")[1].isdigit() else 0))
    return config, {task: samples[task] for task in order}


def checkpoint_folder(model: str) -> str:
    """The folder the Hugging Face backend loads for ``--model`` (a named GGUF model's converted checkpoint)."""
    from harness.backends.huggingface.checkpoints import resolve

    return resolve(model, None, None, False).path


def parting(tokenizer: Any, a: str, b: str) -> tuple[int, int, str, str]:
    """(first differing token index, common prefix in characters, A's token there, B's token there); index
    -1 when the replies are identical. A missing token (the reply ended) reads ``<end>``."""
    ids_a = tokenizer(a, add_special_tokens=False)["input_ids"]
    ids_b = tokenizer(b, add_special_tokens=False)["input_ids"]
    index = 0
    while index < min(len(ids_a), len(ids_b)) and ids_a[index] == ids_b[index]:
        index += 1
    if index == len(ids_a) == len(ids_b):
        return -1, len(a), "", ""
    chars = len(tokenizer.decode(ids_a[:index]))
    token_a = tokenizer.decode([ids_a[index]]) if index < len(ids_a) else "<end>"
    token_b = tokenizer.decode([ids_b[index]]) if index < len(ids_b) else "<end>"
    return index, chars, token_a, token_b


class Diagnosis:
    """Reads why two replies to the same chat prompt part: RUN_A's model's logits at the parting point and,
    with a server, the server's log-probabilities there."""

    def __init__(self, model_dir: str, base_url: str | None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        self.base_url = base_url

    def prompt(self, user: str) -> str:
        return self.tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                                  add_generation_prompt=True)

    def margin(self, prompt: str, prefix: str, token_a: str, token_b: str) -> float | None:
        """RUN_A's model: logit(A's token) - logit(B's token) after the prompt and the common prefix."""
        ids = self.tokenizer(prompt + prefix, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with self.torch.no_grad():
            logits = self.model(ids).logits[0, -1]
        firsts = [self._first_id(token) for token in (token_a, token_b)]
        if None in firsts:
            return None
        return float(logits[firsts[0]] - logits[firsts[1]])

    def _first_id(self, token: str) -> int | None:
        if token == "<end>":
            return self.tokenizer.eos_token_id
        ids = self.tokenizer(token, add_special_tokens=False)["input_ids"]
        return ids[0] if ids else None

    def server_top(self, prompt: str, prefix: str) -> str:
        """The server's top log-probabilities for the next token after the same text, as ``tok:lp`` pairs."""
        if not self.base_url:
            return ""
        body = {"prompt": prompt + prefix, "max_tokens": 1, "temperature": 0, "logprobs": 3}
        request = urllib.request.Request(self.base_url + "/completions", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=120) as response:
            reply = json.load(response)
        tops = (reply["choices"][0].get("logprobs") or {}).get("top_logprobs") or [{}]
        return " ".join(f"{token!r}:{lp:.2f}" for token, lp in sorted(tops[0].items(), key=lambda kv: -kv[1]))


def cause(sample_a: dict[str, Any], sample_b: dict[str, Any], token_a: str, token_b: str,
          margin: float | None) -> str:
    turn_a, turn_b = sample_a["turns"][0], sample_b["turns"][0]
    if turn_a["prompt_tokens"] and turn_b["prompt_tokens"] and turn_a["prompt_tokens"] != turn_b["prompt_tokens"]:
        return "template"
    if "<end>" in (token_a, token_b):
        return "stop"
    if token_a and token_b and (token_a.startswith(token_b) or token_b.startswith(token_a)):
        return "tokenization"
    return "numerics"


def table(names: tuple[str, str], a: dict[str, dict], b: dict[str, dict], problems: list[str],
          diagnosis: Diagnosis, every_parting: bool = False) -> list[str]:
    def passed(samples: dict[str, dict]) -> int:
        return sum(1 for p in problems if samples[p]["passed"])

    agree = sum(1 for p in problems if a[p]["passed"] == b[p]["passed"])
    same = sum(1 for p in problems if a[p]["turns"][0]["raw"] == b[p]["turns"][0]["raw"])
    same_program = sum(1 for p in problems if a[p]["program"] == b[p]["program"])
    n = len(problems)
    lines = [f"problems: {n} (HumanEval order, the first sample of each, greedy)", "",
             f"| | {names[0]} | {names[1]} |", "|---|---|---|",
             f"| pass@1 | {passed(a)}/{n} = {100 * passed(a) / n:.1f}% | {passed(b)}/{n} = {100 * passed(b) / n:.1f}% |",
             "", f"verdicts agree on {agree}/{n} problems ({100 * agree / n:.1f}%); both pass "
             f"{sum(1 for p in problems if a[p]['passed'] and b[p]['passed'])}, only {names[0]} "
             f"{sum(1 for p in problems if a[p]['passed'] and not b[p]['passed'])}, only {names[1]} "
             f"{sum(1 for p in problems if b[p]['passed'] and not a[p]['passed'])}",
             f"identical replies: {same}/{n}; identical programs: {same_program}/{n}", ""]
    partings = [parting(diagnosis.tokenizer, a[p]["turns"][0]["raw"], b[p]["turns"][0]["raw"])[0] for p in problems]
    parted = sorted(i for i in partings if i >= 0)
    if parted:
        lines.append(f"first differing token, over the {len(parted)} differing replies: median {parted[len(parted) // 2]}, "
                     f"min {parted[0]}, max {parted[-1]}; at token 0: {sum(1 for i in parted if i == 0)}")
        lines.append("")
    lines += ["| problem | " + " | ".join(names) + " | token | "
              f"{names[0]} there | {names[1]} there | cause | logit margin ({names[0]}) | server top-3 |",
              "|---|---|---|---|---|---|---|---|---|"]
    for p in problems:
        if a[p]["passed"] == b[p]["passed"] and not every_parting:
            continue
        index, chars, token_a, token_b = parting(diagnosis.tokenizer, a[p]["turns"][0]["raw"], b[p]["turns"][0]["raw"])
        prompt = diagnosis.prompt(a[p]["turns"][0]["prompt"])
        prefix = a[p]["turns"][0]["raw"][:chars]
        margin = diagnosis.margin(prompt, prefix, token_a, token_b) if index >= 0 else None
        top = diagnosis.server_top(prompt, prefix) if index >= 0 else ""
        verdict = {True: "pass", False: "fail"}
        lines.append(f"| {p} | {verdict[a[p]['passed']]} | {verdict[b[p]['passed']]} | {index} | {token_a!r} | "
                     f"{token_b!r} | {cause(a[p], b[p], token_a, token_b, margin) if index >= 0 else 'same reply'} | "
                     f"{'' if margin is None else f'{margin:+.2f}'} | {top} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_a", help="run folder(s), comma-separated (e.g. a run and its continuation)")
    parser.add_argument("run_b", help="run folder(s), comma-separated")
    parser.add_argument("--first", type=int, default=None, help="only the first N problems both runs have")
    parser.add_argument("--tokenizer", default=None, help="checkpoint folder (default: RUN_A's model)")
    parser.add_argument("--base-url", default=None, help="the llama.cpp server, for its log-probabilities")
    parser.add_argument("--every-parting", action="store_true",
                        help="a row for every pair of differing replies, not only where the verdicts differ")
    args = parser.parse_args()
    folders_a, folders_b = ([Path(f) for f in run.split(",")] for run in (args.run_a, args.run_b))
    config_a, a = load_run(folders_a)
    _, b = load_run(folders_b)
    problems = [p for p in a if p in b][:args.first]
    diagnosis = Diagnosis(args.tokenizer or checkpoint_folder(str(config_a["model"])), args.base_url)
    names = (folders_a[0].name, folders_b[0].name)
    print("\n".join(table(names, a, b, problems, diagnosis, args.every_parting)))


if __name__ == "__main__":
    main()

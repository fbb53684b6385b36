"""Multi-turn generation speed: the MTPB reference loop against this harness, in one process.

    python benchmarks/perf/generation_throughput.py [--model tiny-codegen|codegen-350m-arch] [--problems 4]
        [--cases 1] [--n 4] [--max-new-tokens 64] [--batch-size 64] [--data ../shared/data/mtpb.jsonl]

Workload: MTPB's real turns (``../shared/data/mtpb.jsonl`` when present, else the built-in `core` suite's
multi-turn problems), each (problem, test case) answered by ``--n`` sampled conversations.

(a) The MTPB reference loop, re-implemented: one (problem, test case) at a time, each turn re-encodes every
    sample's whole history and calls ``model.generate`` on the n samples together (left-padded), which
    generates the full token budget, and the completion is then truncated the MTPB way.
(b) This harness: turn-synchronous batches across conversations, KV caches kept between turns (only new
    tokens are fed), a shared first prompt encoded once, rows leaving the batch at their stop point.

Printed for each: wall time, generated tokens/s, prompt tokens processed, peak memory (and per conversation),
where the time went by phase (for (a) ``model.generate`` is one phase: prefill, decode and sampling happen
inside it); then the ratios. On a GPU the phases are timed to the end of their kernels, which slows both
loops a little.
``codegen-350m-arch`` is CodeGen-350M's real architecture (20 layers, 1024 wide, 16 heads, rotary 32,
vocab 51200, 2048 positions) with random weights: speed does not need trained weights. Meant for a GPU
(target there: b at least 5x faster at n=20); on CPU use the default tiny model.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from harness.generation.backend import SamplingParams  # noqa: E402
from harness.backends.huggingface.backend import HuggingFaceBackend  # noqa: E402
from harness.backends.huggingface.phases import PhaseClock  # noqa: E402
from harness.generation.conversations import ConversationGenerator, batch_groups, units_for  # noqa: E402
from harness.suites.problems import MULTI_TURN, Problem  # noqa: E402
from harness.generation.prompt_formats import BaseCompletionFormat  # noqa: E402
from harness.suites.registry import resolve_suite  # noqa: E402
from harness.backends.huggingface.tiny_models import tiny_model_path  # noqa: E402

SHARED_MTPB = ROOT.parent / "shared" / "data" / "mtpb.jsonl"


@dataclass
class Figures:
    seconds: float
    generated_tokens: int
    prompt_tokens: int
    peak_bytes: int
    conversations: int
    phases: PhaseClock
    final_prompt_tokens: int = 0  # (a): the last turn's prompts, what encoding each history once would cost

    def lines(self, label: str) -> str:
        return (f"{label}: {self.seconds:8.1f} s  {self.generated_tokens / self.seconds:9.1f} generated tokens/s  "
                f"{self.prompt_tokens:>10,} prompt tokens processed  peak memory {self.peak_bytes / 2**20:8.0f} MiB "
                f"({self.peak_bytes / 2**20 / self.conversations:.1f} MiB per conversation)\n"
                f"    phases: {self.phases.split()}")


class PeakMemory:
    """Peak GPU memory allocated, or on CPU the peak resident set size above the start (sampled)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak = 0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return self
        self.base = self._rss()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.base
        else:
            self.done.set()
            self.thread.join()

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096

    def _sample(self) -> None:
        while not self.done.wait(0.01):
            self.peak = max(self.peak, self._rss() - self.base)


def workload(data: str | None, problems: int) -> tuple[list[Problem], str, str]:
    path = data or (str(SHARED_MTPB) if SHARED_MTPB.exists() else None)
    suite = resolve_suite("mtpb", path) if path else resolve_suite("core")
    chosen = [p for p in suite.problems if p.kind == MULTI_TURN][:problems]
    return chosen, suite.program_prefix, f"{suite.name} ({path or 'built-in'})"


def build_model(name: str, folder: Path) -> str:
    if name != "codegen-350m-arch":
        return str(tiny_model_path(name))
    from transformers import AutoTokenizer, CodeGenConfig, CodeGenForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path("tiny-codegen"))
    config = CodeGenConfig(n_layer=20, n_embd=1024, n_head=16, rotary_dim=32, vocab_size=51200, n_positions=2048,
                           n_ctx=2048, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    CodeGenForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def reference_loop(backend: HuggingFaceBackend, problems: list[Problem], prefix: str, cases: int, n: int,
                   max_new_tokens: int, sampling: SamplingParams) -> Figures:
    """(a): per (problem, case), each turn re-encodes the n histories and generates the whole budget."""
    tokenizer, model, fmt = backend.tokenizer, backend.model, BaseCompletionFormat()
    generated = prompt_tokens = final = conversations = 0
    clock = PhaseClock(synchronize=_synchronizer(backend.device))
    start = time.perf_counter()
    with PeakMemory(backend.device) as memory, torch.inference_mode():
        for problem in problems:
            for case in range(min(cases, problem.num_cases)):
                histories = [prefix] * n
                conversations += n
                for turn in problem.filled_turns(case):
                    clock.start()
                    prompts = [h + fmt.turn_text(turn) for h in histories]
                    batch = tokenizer(prompts, return_tensors="pt", padding=True).to(backend.device)
                    clock.lap("tokenize")
                    out = model.generate(**batch, do_sample=True, temperature=sampling.temperature,
                                         top_p=sampling.top_p, max_new_tokens=max_new_tokens,
                                         pad_token_id=tokenizer.pad_token_id)
                    clock.lap("generate (prefill + decode + sampling)")
                    new = out[:, batch["input_ids"].shape[1]:]
                    prompt_tokens += int(batch["attention_mask"].sum())
                    generated += int(new.numel())
                    texts = tokenizer.batch_decode(new, skip_special_tokens=True)
                    clock.lap("detokenize")
                    histories = [f"{p}{fmt.truncate(t, problem)}\n\n" for p, t in zip(prompts, texts)]
                    clock.lap("stop_detection")
                final += int(batch["attention_mask"].sum())
    if backend.device.type == "cuda":
        torch.cuda.synchronize()
    return Figures(time.perf_counter() - start, generated, prompt_tokens, memory.peak, conversations, clock, final)


def _synchronizer(device: torch.device):
    """Phases on a GPU are timed to the end of their kernels (which costs some speed)."""
    return torch.cuda.synchronize if device.type == "cuda" else None


def harness_loop(backend: HuggingFaceBackend, problems: list[Problem], prefix: str, cases: int, n: int,
                 max_new_tokens: int, sampling: SamplingParams, batch_size: int) -> Figures:
    """(b): this harness's generator, over the same conversations."""
    generator = ConversationGenerator(backend, sampling, 1234, prefix, max_new_tokens=max_new_tokens)
    backend.phases = PhaseClock(synchronize=_synchronizer(backend.device))
    units = [u for u in units_for(problems, n) if u.case < cases]
    start = time.perf_counter()
    with PeakMemory(backend.device) as memory:
        conversations = [c for group in batch_groups(units, batch_size) for c in generator.run_group(group)]
    if backend.device.type == "cuda":
        torch.cuda.synchronize()
    turns = [t for c in conversations for t in c.turns]
    return Figures(time.perf_counter() - start, sum(t.new_tokens for t in turns),
                   sum(t.prompt_tokens_computed for t in turns), memory.peak, len(conversations), backend.phases)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny-codegen", help="tiny-codegen, tiny-llama or codegen-350m-arch")
    parser.add_argument("--data", help="MTPB's mtpb.jsonl (default: ../shared/data/mtpb.jsonl if present)")
    parser.add_argument("--problems", type=int, default=4)
    parser.add_argument("--cases", type=int, default=1, help="test cases per problem")
    parser.add_argument("--n", type=int, default=4, help="samples per (problem, test case)")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="token budget of every turn")
    parser.add_argument("--batch-size", type=int, default=64, help="the harness's batch size")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="auto")
    args = parser.parse_args()
    sampling = SamplingParams(temperature=0.8, top_p=0.95)
    problems, prefix, origin = workload(args.data, args.problems)
    with tempfile.TemporaryDirectory() as tmp:
        backend = HuggingFaceBackend(build_model(args.model, Path(tmp)), device=args.device, dtype=args.dtype)
        turns = sum(len(p.turns) for p in problems) / len(problems)
        print(f"workload: {origin}, {len(problems)} problems x {args.cases} test case(s) x n={args.n}, "
              f"{turns:.1f} turns on average, {args.max_new_tokens} new tokens a turn, temperature 0.8")
        print(f"model: {args.model} ({sum(p.numel() for p in backend.model.parameters()):,} parameters, "
              f"{next(backend.model.parameters()).dtype}) on {backend.device}"
              + (f" ({torch.cuda.get_device_name(backend.device)})" if backend.device.type == "cuda" else ""))
        reference_loop(backend, problems[:1], prefix, 1, 2, 4, sampling)  # warm-up, off the clock
        a = reference_loop(backend, problems, prefix, args.cases, args.n, args.max_new_tokens, sampling)
        b = harness_loop(backend, problems, prefix, args.cases, args.n, args.max_new_tokens, sampling,
                         args.batch_size)
    print(a.lines("(a) MTPB reference loop"))
    print(b.lines("(b) this harness       "))
    print(f"ratio b/a, wall-clock speed-up for the same conversations: {a.seconds / b.seconds:.2f}x "
          "(target on a GPU at n=20: >= 5x)")
    print(f"ratio b/a, generated tokens/s: {(b.generated_tokens / b.seconds) / (a.generated_tokens / a.seconds):.2f}x "
          "((a) always generates the whole budget, (b) stops each row at its stop point)")
    print(f"prompt tokens processed, a/b: {a.prompt_tokens / max(1, b.prompt_tokens):.2f}x fewer in (b); the turn "
          f"count implies {a.prompt_tokens / max(1, a.final_prompt_tokens):.2f}x (all turns' prompts over the last "
          f"turn's, {turns:.1f} turns per problem)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

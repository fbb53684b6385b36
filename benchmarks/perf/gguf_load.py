"""Loading a GGUF checkpoint: the first load (de-quantize and convert, then cache) against later loads (read the
cached plain checkpoint), in one process, each in a fresh, empty HARNESS_CACHE.

    python benchmarks/perf/gguf_load.py [--model smollm2-135m-instruct | FILE.gguf] [--repeat 3]

Printed: the first load's seconds, each later load's, and the ratio. Each load is the Hugging Face backend's
whole start (the file's sha256, the cache lookup or conversion, tokenizer and model from_pretrained), as a
run does it; torch and transformers are imported before the clock starts. Target (issue 31): a later load of
the 135M model in under 5 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def load_seconds(model: str) -> float:
    from harness.backends.huggingface.checkpoints import resolve
    from harness.backends.huggingface.backend import HuggingFaceBackend

    start = time.perf_counter()
    checkpoint = resolve(model, None, None, False)
    HuggingFaceBackend(checkpoint.path, device="cpu", dtype="fp32")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--repeat", type=int, default=3, help="later loads to time")
    args = parser.parse_args()
    import torch  # noqa: F401 (imported before any clock starts)
    import transformers  # noqa: F401

    with tempfile.TemporaryDirectory() as cache:
        os.environ["HARNESS_CACHE"] = cache
        first = load_seconds(args.model)
        later = [load_seconds(args.model) for _ in range(args.repeat)]
    best = min(later)
    print(f"{args.model}: first load (convert and cache) {first:.1f} s; later loads "
          f"{', '.join(f'{s:.2f}' for s in later)} s (best {best:.2f} s, {first / best:.1f}x faster; "
          f"target under 5 s: {'met' if best < 5 else 'NOT met'})")


if __name__ == "__main__":
    main()

"""Sharding speed-up: the same generation-heavy workload with 1 and with 2 processes (torchrun), in one
script, printing wall times and their ratio. Target on a 2-core machine: 2 processes take at most 0.6x
the time of 1.

    python benchmarks/perf/sharding.py [--limit 12] [--num-samples 2] [--max-new-tokens 96]

Both runs use the tiny CodeGen model on CPU with sampling on; each process gets one thread, so the
comparison is one core against two. The results are also checked to be identical.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(processes: int, common: list[str], out: Path) -> float:
    launcher = [sys.executable, "-m", "harness.cli"] if processes == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
        "-m", "harness.cli"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    subprocess.run([*launcher, "run", *common, "--results-dir", str(out), "--run-name", f"p{processes}"],
                   cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=12)
    parser.add_argument("--num-samples", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    args = parser.parse_args()
    common = ["--model", "tiny-codegen", "--device", "cpu", "--temperature", "0.8", "--limit", str(args.limit),
              "--num-samples", str(args.num_samples), "--max-new-tokens", str(args.max_new_tokens),
              "--batch-size", "4", "--no-verdict-cache", "--workers", "1"]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        run(1, common + ["--limit", "1"], out / "warm")  # build the tiny model outside the clock
        one = run(1, common, out)
        two = run(2, common, out)
        same = [json.loads(line)["turns"] for line in (out / "p1" / "samples.jsonl").read_text().splitlines()] == \
               [json.loads(line)["turns"] for line in (out / "p2" / "samples.jsonl").read_text().splitlines()]
    print(f"workload: core suite, {args.limit} problems x {args.num_samples} samples, "
          f"{args.max_new_tokens} new tokens a turn, tiny-codegen on CPU")
    print(f"1 process:   {one:7.1f} s")
    print(f"2 processes: {two:7.1f} s")
    print(f"ratio 2/1 (target <= 0.60): {two / one:.2f}")
    print(f"identical generations: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

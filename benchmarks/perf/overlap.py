"""Generation and execution overlap: a run in which every batch group holds one program that runs until its
time limit. Run one after the other, the two sides would take their sum; overlapped, the wall time should be
close to the larger of the two. Prints both sides' busy and waiting time and the ratios.

    python benchmarks/perf/overlap.py [--groups 8] [--timeout 2] [--generation-seconds 2]

The model is an OpenAI-compatible endpoint on 127.0.0.1 started here, which takes --generation-seconds to
answer each request (as a served model would) with a completion that is valid Python; the suite, made on the
spot, has one-turn problems whose program prefix loops until the CPU-time limit (--timeout) ends it. The
endpoint takes no CPU, so neither side slows the other down. One conversation per batch group.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def slow_endpoint(seconds: float) -> ThreadingHTTPServer:
    """Answers every /completions request after ``seconds`` with ``pass``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(seconds)
            body = json.dumps({"choices": [{"index": 0, "text": "pass\n", "finish_reason": "stop"}],
                               "usage": {"prompt_tokens": 10, "completion_tokens": 2}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def make_suite(folder: Path, groups: int, timeout: float) -> Path:
    problems = [{"id": f"loop/{i}", "category": "loop",
                 "turns": [{"prompt": "Print the number {x}.", "reference": "print({x})"}],
                 "tests": [{"inputs": {"x": i}, "expected": i}]} for i in range(groups)]
    suite = {"name": "overlap", "scorer": "strict", "defaults": {"timeout": timeout},
             "program_prefix": "while True:\n    pass\n\n"}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "suite.yaml").write_text(yaml.safe_dump(suite, sort_keys=False))
    (folder / "loops.yaml").write_text(yaml.safe_dump({"problems": problems}, sort_keys=False))
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--generation-seconds", type=float, default=2.0)
    args = parser.parse_args()
    server = slow_endpoint(args.generation_seconds)
    with tempfile.TemporaryDirectory() as scratch:
        suite = make_suite(Path(scratch) / "suite", args.groups, args.timeout)
        command = [sys.executable, "-m", "harness.cli", "-q", "run", "--suite", str(suite), "--backend", "openai",
                   "--base-url", f"http://127.0.0.1:{server.server_port}/v1", "--model", "slow-endpoint",
                   "--prompt-format", "base", "--temperature", "0", "--batch-size", "1", "--workers", "1",
                   "--timeout", str(args.timeout), "--no-dedup", "--no-verdict-cache",
                   "--results-dir", str(Path(scratch) / "results"), "--run-name", "overlap"]
        subprocess.run(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "none"},
                       check=True, stdout=subprocess.DEVNULL)
        summary = json.loads((Path(scratch) / "results" / "overlap" / "summary.json").read_text())
    server.shutdown()
    timings = summary["timings"]
    statuses = summary["counts"]["statuses"]
    generation, execution = timings["generation_seconds"], timings["execution_seconds"]
    work = timings["wall_seconds"] - timings["model_load_seconds"]
    print(f"{args.groups} groups, one looping program each (statuses {statuses}), time limit {args.timeout}s")
    print(f"generation busy  {generation:7.2f} s   waited for the sandbox {timings['generation_waited_seconds']:7.2f} s")
    print(f"execution busy   {execution:7.2f} s   waited for the model   {timings['execution_waited_seconds']:7.2f} s")
    print(f"sum (one after the other) {generation + execution:7.2f} s; max {max(generation, execution):7.2f} s")
    print(f"wall time after loading the model {work:7.2f} s: {work / (generation + execution):.2f}x the sum, "
          f"{work / max(generation, execution):.2f}x the max")
    return 0


if __name__ == "__main__":
    sys.exit(main())

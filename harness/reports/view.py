"""``run-benchmark view``: one self-contained HTML file to browse every sample of one run, or of two runs
with the samples that flipped between them.

The page needs no network: its script and styles are inline, and the data is embedded gzip-compressed
(base64), decoded in the browser with ``DecompressionStream``. Only a small index is decoded when the page
opens; a problem's sample details are decoded when one of its samples is opened, so the page stays fast
for runs of 100,000 samples. Run data is only ever inserted as text, never as markup, and a
Content-Security-Policy with a per-page nonce keeps any other script from running.
"""

from __future__ import annotations

import html
import secrets
from importlib import resources
from pathlib import Path

from harness import validate_input as validate
from harness.errors import InputError
from harness.run_files import write_atomically
from harness.reports.finished_runs import FinishedRun, run_labels
from harness.reports.view_data import build_view, compress


def render_view(runs: list[FinishedRun]) -> str:
    """The page for one run, or for two (the first is the baseline, the second the candidate)."""
    if not 1 <= len(runs) <= 2:
        raise InputError(f"view takes one run or two (baseline, candidate), got {len(runs)}", field="runs")
    labels = run_labels(runs)
    index, chunks = build_view(runs, labels)
    blocks = [f'<script type="application/octet-stream" id="index">{compress(index)}</script>']
    for run, run_chunks in enumerate(chunks):
        blocks += [f'<script type="application/octet-stream" id="c-{run}-{problem}">{data}</script>'
                   for problem, data in enumerate(run_chunks) if data is not None]
    template = resources.files("harness.reports").joinpath("view_template.html").read_text(encoding="utf-8")
    title = "Samples: " + " vs ".join(labels)
    nonce = secrets.token_urlsafe(18)
    # The data blocks are base64 (no markup can hide in them); the title is the only other text from the runs,
    # put in last so that a run named like a placeholder is not expanded.
    return (template.replace("__NONCE__", nonce).replace("__DATA__", "\n".join(blocks))
            .replace("__TITLE__", html.escape(title)))


def write_view(runs: list[FinishedRun], out: Path) -> Path:
    """Write the page to ``out`` atomically: an existing file is replaced only by a complete page."""
    validate.writable_file(out, "out")
    write_atomically(out, render_view(runs), "out")
    return out

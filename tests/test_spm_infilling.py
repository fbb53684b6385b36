"""Code Llama's suffix-prefix-middle (SPM) infilling next to prefix-suffix-middle (PSM): the token ids equal an
independent restatement of Meta's reference rule (facebookresearch/codellama, ``llama/generation.py``,
``infilling_prompt_tokens``; ``llama/tokenizer.py``, ``encode_infilling``) computed with SentencePiece itself on
the tiny Code Llama's tokenizer, over hundreds of published infilling problems; an SPM run records its mode and
is resumed and compared only with runs of the same mode; every infilling release is pinned."""

from __future__ import annotations

import hashlib
import json

import pytest

from conftest import needs_shared_data, run_cli
from harness.backends.huggingface.backend import HuggingFaceBackend
from harness.backends.huggingface.tiny_models import tiny_model_path
from harness.generation.backend import GenerationRequest
from harness.generation.truncation import INFILLING_STOP
from harness.suites.datasets.humaneval import INFILLING
from harness.suites.registry import resolve_suite

SUITES = {"single-line": 1, "random-span-light": 1, "random-span": 8, "multi-line": 40}  # variant: every n-th


def _reference_ids(sp, prefix: str, suffix: str, suffix_first: bool) -> list[int]:
    """Meta's rule, restated: ``encode_infilling(s)`` is ``sp.encode("☺" + s)[2:]`` (the implicit leading
    space and the smiley dropped); SPM is ``<s> <PRE> <SUF> suffix' <MID> prefix``, PSM is
    ``<s> <PRE> prefix <SUF> suffix' <MID>``, where ``prefix`` is a plain encode (leading space kept)."""
    bos, pre, suf, mid = sp.bos_id(), sp.piece_to_id("▁<PRE>"), sp.piece_to_id("▁<SUF>"), sp.piece_to_id("▁<MID>")
    infill = sp.encode("☺" + suffix)[2:]
    if suffix_first:
        return [bos, pre, suf] + infill + [mid] + sp.encode(prefix)
    return [bos, pre] + sp.encode(prefix) + [suf] + infill + [mid]


def _problems() -> list:
    chosen = []
    for variant, every in SUITES.items():
        path = needs_shared_data(f"infilling/{INFILLING[variant].filename}")
        chosen += list(resolve_suite(f"humaneval-infilling-{variant}", str(path)).problems)[::every]
    return chosen


def test_psm_and_spm_token_ids_equal_the_reference_rule():
    import sentencepiece

    folder = tiny_model_path("tiny-llama")
    sp = sentencepiece.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
    # The trick needs a smiley piece that never merges with a space: "☺x" is "▁", "☺", then x unspaced.
    assert [sp.id_to_piece(i) for i in sp.encode("☺\n    x")[:2]] == ["▁", "☺"]
    backend = HuggingFaceBackend(str(folder), device="cpu")
    problems = _problems()
    assert len(problems) >= 200
    for suffix_first in (False, True):
        for problem in problems:
            request = GenerationRequest(prompt=problem.prompt, suffix=problem.suffix, max_new_tokens=8, seed=0,
                                        stop=INFILLING_STOP, suffix_first=suffix_first)
            assert backend.encode(request) == _reference_ids(sp, problem.prompt, problem.suffix, suffix_first), \
                (problem.id, suffix_first)
    # The layouts differ where they should: SPM starts <s> <PRE> <SUF> and ends with the prefix.
    tok = backend.tokenizer
    spm = backend.encode(GenerationRequest(prompt="def f():\n", suffix="\n    return 1\n", max_new_tokens=8, seed=0,
                                           suffix_first=True))
    assert spm[:3] == [tok.bos_token_id, tok.prefix_id, tok.suffix_id] and tok.middle_id in spm[3:-1]


@pytest.mark.parametrize("variant", sorted(INFILLING))
def test_every_infilling_release_is_pinned_to_the_shared_copy(variant):
    spec = INFILLING[variant]
    path = needs_shared_data(f"infilling/{spec.filename}")
    assert spec.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("variant", sorted(INFILLING))
def test_an_spm_run_completes_on_each_release_and_records_its_mode(variant, tmp_path):
    data = str(needs_shared_data(f"infilling/{INFILLING[variant].filename}"))
    suite = f"humaneval-infilling-{variant}"
    result = run_cli("run", "--suite", suite, "--data", data, "--model", "tiny-llama", "--infilling-mode", "spm",
                     "--limit", "3", "--max-new-tokens", "4", "--results-dir", str(tmp_path), "--run-name", "spm")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "spm" / "summary.json").read_text())
    assert summary["config"]["infilling_mode"] == "spm"
    assert summary["suite"]["origin"]["sha256"] == INFILLING[variant].sha256


def test_resume_and_compare_tell_the_modes_apart(tmp_path):
    data = str(needs_shared_data("infilling/HumanEval-RandomSpanInfillingLight.jsonl.gz"))
    common = ("--suite", "humaneval-infilling-random-span-light", "--data", data, "--model", "reference",
              "--limit", "2", "--results-dir", str(tmp_path))
    assert run_cli("run", *common, "--run-name", "psm").returncode == 0
    assert run_cli("run", *common, "--run-name", "spm", "--infilling-mode", "spm").returncode == 0
    # The canonical middles still pass: the mode changes the prompt, never the program.
    assert json.loads((tmp_path / "spm" / "summary.json").read_text())["overall"]["pass@1"] == 1.0
    resumed = run_cli("run", *common, "--run-name", "spm", "--resume")
    assert resumed.returncode == 2 and "infilling_mode" in resumed.stderr
    compared = run_cli("compare", "--baseline", str(tmp_path / "psm"), "--candidate", str(tmp_path / "spm"))
    assert compared.returncode == 2 and "infilling_mode" in compared.stderr

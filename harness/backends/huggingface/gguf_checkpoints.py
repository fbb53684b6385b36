"""GGUF checkpoints for the Hugging Face backend: find the file (``--model FILE.gguf``, or a folder or hub id with
``--gguf-file NAME``), and convert it once into a plain checkpoint cached under ``HARNESS_CACHE/gguf/<sha256>``.

transformers loads a GGUF file by de-quantizing every tensor and converting the tokenizer from the file's
metadata, which takes seconds to minutes; a model loaded that way cannot be saved (``save_pretrained`` refuses
a GGUF-quantized model). So the first load copies its weights into a model built from the same config and
saves that, with the tokenizer (chat template and special tokens from the file); later loads read the folder.
An entry is written into a temporary folder and renamed into place, so a crash never leaves a half entry under
the real name; an entry whose files do not match its own record is converted again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.cache_paths import cache_root
from harness.errors import InputError

log = logging.getLogger(__name__)

RECORD = "harness-gguf.json"  # written last into an entry: the file it came from and its own files' sizes
FORMAT = 1  # the layout of an entry; another value converts again


@dataclass(frozen=True)
class GgufFile:
    """A GGUF file on this machine: ``source`` and ``name`` as ``from_pretrained(source, gguf_file=name)``
    takes them (a folder or a hub id), ``path`` the file itself."""

    source: str
    name: str
    path: Path
    sha256: str

    def identity(self) -> dict[str, str]:
        return {"file": self.name, "sha256": self.sha256}


def is_gguf_path(model: str) -> bool:
    return model.lower().endswith(".gguf")


def locate(model: str, gguf_file: str | None, revision: str | None) -> GgufFile:
    """The GGUF file a run names: ``model`` a ``.gguf`` file, or a folder or hub id holding ``gguf_file``."""
    if is_gguf_path(model):
        if gguf_file:
            raise InputError("--gguf-file names a file inside --model's folder or hub repository; --model is "
                             "already a GGUF file", file=model, field="gguf_file")
        path = Path(model).expanduser()
        if not path.is_file():
            raise InputError("GGUF file does not exist", file=model, field="model")
        return GgufFile(str(path.parent), path.name, path, file_sha256(path))
    if not gguf_file:
        raise InputError("a GGUF file is named with --model FILE.gguf, or --model FOLDER_OR_HUB_ID --gguf-file NAME",
                         file=model, field="gguf_file")
    folder = Path(model).expanduser()
    if folder.is_dir():
        path = folder / gguf_file
        if not path.is_file():
            raise InputError(f"{gguf_file!r} is not a file in this folder", file=model, field="gguf_file")
        return GgufFile(str(folder), gguf_file, path, file_sha256(path))
    from transformers.utils import cached_file  # the same lookup from_pretrained(hub_id, gguf_file=...) does

    try:
        found = cached_file(model, gguf_file, revision=revision)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot get {gguf_file!r}: {str(exc).splitlines()[0]}", file=model,
                         field="gguf_file") from None
    if found is None:
        raise InputError(f"{gguf_file!r} is not in this repository", file=model, field="gguf_file")
    return GgufFile(model, gguf_file, Path(found), file_sha256(Path(found)))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def plain_checkpoint(gguf: GgufFile, *, revision: str | None, trust_remote_code: bool) -> Path:
    """The cached plain checkpoint of ``gguf`` (a folder ``from_pretrained`` reads), converting it first if
    there is none or the one there is incomplete or damaged."""
    root = cache_root() / "gguf"
    target = root / gguf.sha256
    problem = entry_problem(target, gguf.sha256)
    if problem is None:
        return target
    if target.exists():
        log.warning("the cached conversion of %s in %s is unusable (%s); converting it again", gguf.name, target,
                    problem)
        _remove(target)
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{gguf.sha256[:12]}-", dir=root))
    try:
        log.info("converting %s (%.0f MB) into a plain checkpoint in %s: once per file, this takes a while "
                 "(de-quantizing every tensor, converting the tokenizer)", gguf.name, gguf.path.stat().st_size / 1e6,
                 target)
        _convert(gguf, scratch, revision=revision, trust_remote_code=trust_remote_code)
        try:
            scratch.rename(target)
        except OSError:  # another process converted it meanwhile
            if entry_problem(target, gguf.sha256) is not None:
                raise
        log.info("converted %s", gguf.name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def entry_problem(folder: Path, sha256: str) -> str | None:
    """Why the cache entry ``folder`` cannot be used, or None when every file its record lists is there
    with the recorded size."""
    try:
        record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "missing" if not folder.exists() else f"no {RECORD}"
    except (OSError, ValueError) as exc:
        return f"{RECORD} unreadable: {exc}"
    if not isinstance(record, dict) or record.get("sha256") != sha256 or record.get("format") != FORMAT:
        return f"{RECORD} records another file or layout"
    for name, size in (record.get("files") or {}).items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != size:
            return f"{name} is missing or has another size than when it was written"
    return None if record.get("files") else f"{RECORD} lists no files"


def _remove(folder: Path) -> None:
    """Out of the way first (a rename is atomic), then deleted: a reader never sees half a folder."""
    aside = folder.with_name(f".{folder.name}-removed-{os.getpid()}")
    try:
        folder.rename(aside)
    except FileNotFoundError:  # another process removed it first
        return
    shutil.rmtree(aside, ignore_errors=True)


def _convert(gguf: GgufFile, out: Path, *, revision: str | None, trust_remote_code: bool) -> None:
    if importlib.util.find_spec("gguf") is None:
        raise InputError("loading a GGUF file needs the gguf package, which is not installed: pip install -c "
                         "constraints.txt -e '.[gguf]' (or pip install gguf)", file=str(gguf.path), field="model")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"gguf_file": gguf.name, "trust_remote_code": trust_remote_code}
    if revision:
        kwargs["revision"] = revision
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.source, **kwargs)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.source, dtype=torch.float32, **kwargs)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:  # an architecture transformers cannot read
        raise InputError(f"cannot load the GGUF file: {str(exc).splitlines()[0]}", file=str(gguf.path),
                         field="model") from None
    config = loaded.config
    del config.quantization_config  # the saved weights are plain fp32
    with torch.device("meta"):  # no time spent initialising weights that are replaced at once
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32, trust_remote_code=trust_remote_code)
    plain.load_state_dict(loaded.state_dict(), strict=True, assign=True)
    plain.tie_weights()
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)
    files = {path.name: path.stat().st_size for path in sorted(out.iterdir()) if path.is_file()}
    record = {"format": FORMAT, "file": gguf.name, "sha256": gguf.sha256, "files": files}
    (out / RECORD).write_text(json.dumps(record, indent=1), encoding="utf-8")

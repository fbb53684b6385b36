"""What the Hugging Face backend loads for a run's ``--model``: a tiny model's built folder, the converted
checkpoint of a GGUF file (a named packaged model's, ``FILE.gguf``, or a folder or hub id with ``--gguf-file``),
or the name as given (a hub id or a folder)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.backends.huggingface.gguf_checkpoints import GgufFile, is_gguf_path, locate, plain_checkpoint
from harness.backends.huggingface.packaged_models import PACKAGED_MODELS, check_packaged_sha256, packaged_file
from harness.backends.huggingface.tiny_models import TINY_MODELS, tiny_model_path
from harness.errors import InputError


@dataclass(frozen=True)
class Checkpoint:
    path: str  # what from_pretrained reads
    gguf: GgufFile | None = None  # the GGUF file it was converted from


def resolve(model: str, gguf_file: str | None, revision: str | None, trust_remote_code: bool) -> Checkpoint:
    if model in TINY_MODELS or model in PACKAGED_MODELS:
        if gguf_file:
            raise InputError(f"{model} is a named model; --gguf-file goes with a folder or hub id",
                             field="gguf_file")
        if model in TINY_MODELS:
            return Checkpoint(str(tiny_model_path(model)))
        path = packaged_file(model)
        gguf = locate(str(path), None, None)
        check_packaged_sha256(model, gguf.sha256)
    elif gguf_file or is_gguf_path(model):
        gguf = locate(model, gguf_file, revision)
    else:
        return Checkpoint(model)
    # The converted folder has no revision of its own: the file's sha256 names it.
    return Checkpoint(str(plain_checkpoint(gguf, revision=revision, trust_remote_code=trust_remote_code)), gguf)

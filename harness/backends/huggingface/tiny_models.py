"""Tiny local models for offline runs and tests: random weights, tokenizers trained on the spot.

They go through the same ``from_pretrained`` path as hub models: they are built once, saved with
``save_pretrained`` into the cache folder, and loaded back from that path. Their answers are noise; they
exist to exercise the whole pipeline without a network. The training corpus is fixed text shipped with
the project (the built-in suite and this module's corpus), so the same model is built on every machine.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from harness.backends.huggingface.families import INFILLING_SMILEY
from harness.suites.bundled import core_suite_dir
from harness.cache_paths import cache_root

log = logging.getLogger(__name__)

TINY_MODELS = {
    "tiny-codegen": "CodeGen architecture (2 layers, 64 wide) with a byte-level BPE tokenizer",
    "tiny-llama": "Llama architecture (2 layers, 64 wide) with a SentencePiece Code Llama tokenizer "
                  "(infilling tokens <PRE> <SUF> <MID> <EOT>)",
    "tiny-llama-instruct": "tiny-llama with Code Llama Instruct's chat template ([INST] ... [/INST])",
}
# Code Llama Instruct's (Llama 2 chat) layout: <s>[INST] user [/INST] assistant </s><s>[INST] ...
CODELLAMA_INSTRUCT_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set system = messages[0]['content'] %}"
    "{% set turns = messages[1:] %}{% else %}{% set system = none %}{% set turns = messages %}{% endif %}"
    "{% for message in turns %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% set content = message['content'] %}"
    "{% if loop.index0 == 0 and system is not none %}"
    "{% set content = '<<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' + content %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content | trim + ' [/INST]' }}"
    "{% else %}{{ ' ' + content | trim + ' ' + eos_token }}{% endif %}"
    "{% endfor %}")
BUILD_VERSION = "2"
# Weights come from this generator, not from the library's initialisation code, which may change between
# transformers releases (5.24 changed it, and with it every sample of the committed baseline).
WEIGHT_SEED = 0
WEIGHT_STD = 0.1
CODELLAMA_SPECIAL = ["▁<PRE>", "▁<MID>", "▁<SUF>", "▁<EOT>"]
# Meta's reference encodes an infilling suffix as ``encode("☺" + suffix)[2:]``, dropping the implicit leading
# space and the smiley: Code Llama's vocabulary has the smiley as an ordinary piece that merges with nothing,
# and so does this one's (one occurrence in the corpus, after no space; character_coverage keeps every character).
SMILEY = INFILLING_SMILEY

_EXTRA_CORPUS = '''import numpy as np
import pandas as pd

def main():
    values = [1, 2, 3]
    total = sum(values)
    print(total)
    return {"total": total, "mean": total / len(values)}

class Counter:
    def __init__(self):
        self.counts = {}

    def add(self, key):
        self.counts[key] = self.counts.get(key, 0) + 1

for i in range(10):
    if i % 2 == 0:
        print(i)
    else:
        continue
'''


def corpus_lines() -> list[str]:
    root = core_suite_dir()
    files = sorted(root.glob("*.yaml"))
    if not files:  # never build other models from a smaller corpus under the same names
        raise FileNotFoundError(f"the core suite, the tiny models' corpus, is missing from {root}")
    texts = [p.read_text(encoding="utf-8") for p in files]
    texts.append(_EXTRA_CORPUS)
    texts.append(f"#{SMILEY}")
    return [line for text in texts for line in text.splitlines() if line.strip()]


def build_fingerprint() -> str:
    """The models depend on the corpus (the core suite's files) and on this module's code: a change to
    either builds new models instead of reusing stale ones from the cache."""
    digest = hashlib.sha256("\n".join(corpus_lines()).encode())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:12]


def tiny_model_path(name: str) -> Path:
    """Path of the tiny model ``name``, building it on first use."""
    if name not in TINY_MODELS:
        raise KeyError(name)
    target = cache_root() / "tiny-models" / f"{name}-v{BUILD_VERSION}-{build_fingerprint()}"
    if _intact(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    _discard(target)
    log.info("building %s in %s (first use)", name, target)
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        if name == "tiny-codegen":
            _build_codegen(scratch)
        else:
            _build_llama(scratch, chat=name == "tiny-llama-instruct")
        (scratch / MANIFEST).write_text(json.dumps(_checksums(scratch), sort_keys=True))
        try:
            scratch.rename(target)
        except OSError:  # another process built it meanwhile
            if not _intact(target):
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


# Each file's checksum, written last: a folder without it (a build cut short) or whose files differ from it
# (one removed, weights corrupted on disk) is built again rather than loaded.
MANIFEST = "harness-build.json"


def _checksums(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if p.is_file() and p.name != MANIFEST}


def _intact(folder: Path) -> bool:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8")) == _checksums(folder)
    except (OSError, ValueError):
        return False


def _discard(folder: Path) -> None:
    """A damaged build out of the way (moved aside first, so a process loading it meanwhile fails cleanly
    rather than reading a folder half removed)."""
    aside = folder.with_name(f".{folder.name}-damaged-{os.getpid()}")
    try:
        folder.rename(aside)
    except OSError:  # not there, or another process moved it
        return
    log.warning("the cached %s is incomplete or damaged; building it again", folder.name)
    shutil.rmtree(aside, ignore_errors=True)


def _build_codegen(out: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import CodeGenConfig, CodeGenForCausalLM, PreTrainedTokenizerFast

    eot = "<|endoftext|>"
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1024, special_tokens=[eot], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator([line + "\n" for line in corpus_lines()], trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=eot, eos_token=eot, unk_token=eot,
                                   pad_token=eot, model_max_length=2048)
    fast.save_pretrained(out)
    eot_id = fast.convert_tokens_to_ids(eot)
    config = CodeGenConfig(vocab_size=len(fast), n_positions=2048, n_ctx=2048, n_embd=64, n_layer=2, n_head=4,
                           rotary_dim=8, bos_token_id=eot_id, eos_token_id=eot_id, pad_token_id=eot_id,
                           tie_word_embeddings=False)
    _save_with_seeded_weights(CodeGenForCausalLM(config), out)


def _build_llama(out: Path, chat: bool) -> None:
    import sentencepiece as spm
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus_lines()), model_prefix=str(out / "spm"), vocab_size=512, model_type="bpe",
        user_defined_symbols=CODELLAMA_SPECIAL, byte_fallback=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        character_coverage=1.0, num_threads=1, split_digits=True, allow_whitespace_only_pieces=True,
        remove_extra_whitespaces=False, normalization_rule_name="identity", minloglevel=2)
    (out / "spm.model").rename(out / "tokenizer.model")
    (out / "spm.vocab").unlink()
    (out / "tokenizer_config.json").write_text('{"tokenizer_class": "CodeLlamaTokenizer"}')
    tokenizer = AutoTokenizer.from_pretrained(out)
    model_file = (out / "tokenizer.model").read_bytes()
    (out / "tokenizer.model").unlink()
    (out / "tokenizer_config.json").unlink()
    if chat:
        tokenizer.chat_template = CODELLAMA_INSTRUCT_TEMPLATE
    tokenizer.save_pretrained(out)
    # Kept beside tokenizer.json, as Code Llama's hub folders keep it: SentencePiece itself can read it back.
    (out / "tokenizer.model").write_bytes(model_file)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048,
                         bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    _save_with_seeded_weights(LlamaForCausalLM(config), out)


def _save_with_seeded_weights(model, out: Path) -> None:
    """Overwrite every parameter from numpy's legacy ``RandomState`` (its stream is frozen across numpy
    releases), in the order of the sorted parameter names: matrices and embeddings ~ N(0, WEIGHT_STD),
    other weights (norm scales) 1, biases 0. The weights then depend on the architecture's parameter names
    and shapes alone. WEIGHT_STD is larger than the usual 0.02 so that the top two logits rarely lie within
    float rounding of each other, which would make greedy outputs depend on the summation order."""
    import numpy as np
    import torch

    generator = np.random.RandomState(WEIGHT_SEED)
    with torch.no_grad():
        for name, parameter in sorted(model.named_parameters()):
            if parameter.dim() >= 2:
                values = generator.normal(0.0, WEIGHT_STD, size=tuple(parameter.shape))
                parameter.copy_(torch.from_numpy(values.astype(np.float32)))
            elif name.endswith("weight"):
                parameter.fill_(1.0)
            else:
                parameter.zero_()
    model.save_pretrained(out)

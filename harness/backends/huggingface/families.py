"""Which model family a checkpoint belongs to, read from its config, tokenizer and name.

CodeGen (``Salesforce/codegen-{350M,2B,6B,16B}-{nl,multi,mono}``, CodeGen2/2.5) and Code Llama
(``codellama/CodeLlama-{7b,13b,34b}{,-Python,-Instruct}-hf``) need different handling: CodeGen ends text
with ``<|endoftext|>`` and has no pad token; Code Llama's tokenizer adds ``<s>`` itself, fills in the
middle when it has the ``<PRE> <SUF> <MID> <EOT>`` tokens, and its Instruct models take a chat template.
The family and variant are recorded with the results, because scores are only comparable within them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from harness.model_families import CODEGEN_NAME, CODELLAMA_NAME

# Meta's reference (facebookresearch/codellama, llama/tokenizer.py, ``encode_infilling``) encodes an infilling
# suffix as ``encode("☺" + suffix)[2:]``: the implicit leading space and this piece, dropped.
INFILLING_SMILEY = "☺"


@dataclass(frozen=True)
class ModelFamily:
    family: str  # codegen, codellama, llama, or the config's model_type
    variant: str | None  # codegen: nl, multi or mono; codellama: base, python or instruct
    size: str | None
    chat_template: bool
    infilling: bool
    adds_bos: bool  # the tokenizer puts <s> in front of a plain prompt by itself

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def detect_family(name: str, config: Any, tokenizer: Any) -> ModelFamily:
    """``name`` is the hub id or path the model was loaded from (the config's ``_name_or_path`` if unsure)."""
    model_type = getattr(config, "model_type", "") or ""
    chat = bool(getattr(tokenizer, "chat_template", None))
    infilling = all(getattr(tokenizer, attr, None) is not None
                    for attr in ("prefix_id", "suffix_id", "middle_id", "eot_id"))
    probe = tokenizer("x")["input_ids"]
    adds_bos = bool(probe) and tokenizer.bos_token_id is not None and probe[0] == tokenizer.bos_token_id
    variant = size = None
    family = model_type
    if model_type.startswith("codegen"):
        family = "codegen"
        match = CODEGEN_NAME.search(name)
        if match:
            variant, size = match["variant"].lower(), match["size"]
    elif model_type == "llama":
        match = CODELLAMA_NAME.search(name)
        if match or infilling or type(tokenizer).__name__.startswith("CodeLlama"):
            family = "codellama"
            variant = "instruct" if chat else "base"
            if match:
                variant = (match["variant"] or variant).lower()
                size = match["size"].lower()
    return ModelFamily(family, variant, size, chat, infilling, adds_bos)

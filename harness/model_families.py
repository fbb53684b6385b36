"""Model families by name: the patterns of the families whose scores are only comparable within them
(CodeGen, Code Llama), and the names reports print. Pure name matching, so that both the model loader
(``harness.backends.huggingface.families``, which also reads the model's config and tokenizer) and the reports (which
read what a run recorded, and fall back to the name for runs that recorded no family) use one table."""

from __future__ import annotations

import re

CODEGEN_NAME = re.compile(r"codegen(?P<generation>[\d.]*)-(?P<size>[\d.]+[MB])-(?P<variant>nl|multi|mono|instruct)",
                          re.IGNORECASE)
CODELLAMA_NAME = re.compile(r"codellama-(?P<size>\d+b)(?:-(?P<variant>python|instruct))?", re.IGNORECASE)

DISPLAY_NAMES = {"codegen": "CodeGen", "codellama": "Code Llama"}
NO_VARIANT = "-"


def display(family: str, variant: str | None) -> tuple[str, str]:
    """A recorded family and variant (``ModelFamily``'s) as reports print them: ``("CodeGen", "mono")``,
    ``("Code Llama", "Python")``, or the config's model type and ``-``."""
    if family == "codellama":
        variant = (variant or "base").lower()
        return DISPLAY_NAMES[family], variant if variant == "base" else variant.capitalize()
    return DISPLAY_NAMES.get(family, family), variant or NO_VARIANT


def from_name(name: str, model_type: str) -> tuple[str, str]:
    """Family and variant (as ``display`` gives them) from the model's name and recorded model type alone:
    for runs made before the family was recorded."""
    name = name.lower()
    if model_type == "codegen" or "codegen" in name:
        match = re.search(r"-(mono|multi|nl)\b", name)
        return display("codegen", match.group(1) if match else None)
    if "codellama" in name or "code-llama" in name:
        return display("codellama", next((v for v in ("instruct", "python") if v in name), "base"))
    return model_type, NO_VARIANT

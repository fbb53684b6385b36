"""Loading a Hugging Face model and tokenizer for ``harness.backends.huggingface.backend``: the device, the dtype,
quantization and the attention implementation, each refused in one line before anything loads when this
machine cannot have it."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from harness.errors import InputError


def _quiet_transformers() -> None:
    """transformers' own logger and progress bars: errors only (the harness says what is happening)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


DTYPES = {"auto": "auto", "bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


# Attention implementations that need a package of their own (transformers imports it while loading).
ATTENTION_PACKAGES = {"flash_attention_2": "flash_attn", "flash_attention_3": "flash_attn_interface"}


def check_attention(name: str) -> None:
    """Refuse an attention implementation whose package is missing before anything loads."""
    package = ATTENTION_PACKAGES.get(name)
    if package and importlib.util.find_spec(package) is None:
        raise InputError(f"--attn-implementation {name} needs the {package.replace('_', '-')} package, which is not "
                         "installed (pip install flash-attn; it needs a CUDA GPU); use sdpa or eager instead",
                         field="attn_implementation")


def quantization_config(load_in: str, compute_dtype: str) -> Any:
    """8-bit or 4-bit (NF4) weights through bitsandbytes, which must be installed (it needs a CUDA GPU)."""
    if load_in not in ("8bit", "4bit"):
        raise InputError(f"unknown quantization {load_in!r} (choose 8bit or 4bit)", field="load_in")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise InputError(f"--load-in {load_in} needs bitsandbytes, which is not installed (pip install "
                         "bitsandbytes; it needs a CUDA GPU)", field="load_in")
    import torch
    from transformers import BitsAndBytesConfig

    if load_in == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    compute = torch.bfloat16 if compute_dtype in ("auto", "bfloat16") else getattr(torch, compute_dtype)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute)


def load_model(model: str, device: str, dtype: str, *, trust_remote_code: bool, revision: str | None,
               device_map: str | None, attn_implementation: str | None, load_in: str | None) -> tuple[Any, Any, Any]:
    """The tokenizer, the model (in eval mode, on its device) and the device its inputs go to."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet_transformers()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda asked for, but no CUDA device is available", field="device")
    place = torch.device(device)
    if dtype not in DTYPES:
        raise InputError(f"unknown dtype {dtype!r} (choose from {', '.join(DTYPES)})", field="dtype")
    torch_dtype = DTYPES[dtype]
    if torch_dtype == "auto" and place.type == "cpu":
        torch_dtype = "float32"
    looks_local = model.startswith((".", "/", "~")) or os.sep in model and Path(model).exists()
    if looks_local and not Path(model).expanduser().exists():
        raise InputError("model path does not exist", file=model, field="model")
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if revision:
        kwargs["revision"] = revision
    model_kwargs: dict[str, Any] = {}
    if attn_implementation:
        check_attention(attn_implementation)
        model_kwargs["attn_implementation"] = attn_implementation
    if load_in:
        model_kwargs["quantization_config"] = quantization_config(load_in, torch_dtype)
        # Quantized weights are placed while loading and cannot be moved afterwards.
        device_map = device_map or {"": place.index or 0 if place.type == "cuda" else "cpu"}
    try:
        tokenizer = AutoTokenizer.from_pretrained(model, **kwargs)
        if device_map:  # a model too large for one device: accelerate spreads its layers over the GPUs
            kwargs["device_map"] = device_map
        loaded = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype, **kwargs, **model_kwargs)
    except OSError as exc:
        raise InputError(f"cannot load model: {str(exc).splitlines()[0]}", file=model, field="model") from None
    except (ValueError, ImportError) as exc:  # e.g. an attention implementation this model or machine lacks
        raise InputError(f"cannot load model: {str(exc).splitlines()[0]}", file=model,
                         field="attn_implementation" if attn_implementation else "model") from None
    if device_map:
        place = loaded.get_input_embeddings().weight.device  # inputs go where the first layer is
    else:
        loaded.to(place)
    loaded.eval()
    return tokenizer, loaded, place

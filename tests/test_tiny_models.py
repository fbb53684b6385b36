"""The tiny models' weights come from the harness's own seeded generator, not the library's init code."""

from __future__ import annotations

import torch
from transformers import CodeGenConfig, CodeGenForCausalLM, LlamaConfig, LlamaForCausalLM

from harness.backends.huggingface.tiny_models import _save_with_seeded_weights


def _weights_after(model_factory, torch_seed: int, out) -> dict[str, torch.Tensor]:
    torch.manual_seed(torch_seed)  # what the library's initialisation would draw from
    model = model_factory()
    _save_with_seeded_weights(model, out)
    return {name: tensor.clone() for name, tensor in model.state_dict().items()}


def test_weights_do_not_depend_on_the_library_initialisation(tmp_path):
    factories = {
        "codegen": lambda: CodeGenForCausalLM(CodeGenConfig(vocab_size=64, n_embd=32, n_layer=1, n_head=4,
                                                            rotary_dim=4, tie_word_embeddings=False)),
        "llama": lambda: LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64,
                                                      num_hidden_layers=1, num_attention_heads=4,
                                                      num_key_value_heads=4, tie_word_embeddings=False)),
    }
    for name, factory in factories.items():
        first = _weights_after(factory, 0, tmp_path / f"{name}-a")
        second = _weights_after(factory, 12345, tmp_path / f"{name}-b")
        parameters = dict(factory().named_parameters())
        for key, tensor in parameters.items():
            assert torch.equal(first[key], second[key]), f"{name}: {key} still comes from the library's init"
        matrices = [key for key, tensor in parameters.items() if tensor.dim() >= 2]
        assert matrices and all(first[key].std() > 0.05 for key in matrices)

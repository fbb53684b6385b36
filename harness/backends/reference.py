"""The reference backend: answers every turn with the problem's reference solution."""

from __future__ import annotations

from typing import Any

from harness.backends.spec import BackendOptions, BackendSpec
from harness.errors import InputError
from harness.generation.backend import GenerationRequest, GenerationResult, SamplingParams


class ReferenceBackend:
    name = "reference"
    requires_reference = True
    supports_infilling = True  # the reference middle
    supports_chat = prefers_chat = False

    def identity(self) -> dict[str, Any]:
        return {"backend": "reference", "model": "reference"}

    def generate(self, requests: list[GenerationRequest], sampling: SamplingParams) -> list[GenerationResult]:
        results = []
        for request in requests:
            if request.reference is None:
                raise InputError("the reference backend needs a reference solution for every turn",
                                 field="reference")
            results.append(GenerationResult(text=request.reference))
        return results


def build(options: BackendOptions, launch_device: str | None) -> ReferenceBackend:
    return ReferenceBackend()


BACKEND = BackendSpec("reference", "each problem's reference solution (also --model reference): a suite checks "
                                   "itself", build)

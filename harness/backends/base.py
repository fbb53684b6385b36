"""The backend contract under the path plug-in backends import it from (``from harness.backends.base import
GenerationResult``). It lives in ``harness.generation.backend``: below generation, which drives any backend
through it, and below every backend, which implements it."""

from harness.generation.backend import Backend, BackendError, GenerationRequest, GenerationResult, SamplingParams

__all__ = ["Backend", "BackendError", "GenerationRequest", "GenerationResult", "SamplingParams"]

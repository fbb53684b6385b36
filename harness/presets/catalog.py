"""The presets file (``papers.yaml`` beside this module): each preset's settings, where each comes from, its
tolerance and the published figures per model; and which of those figures a model's name refers to."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.model_families import CODEGEN_NAME, CODELLAMA_NAME
from harness.suites.yaml_input import load_yaml_file

PRESETS_FILE = Path(__file__).with_name("papers.yaml")
REQUIRED = ("paper", "source", "description", "settings", "setting_sources", "tolerance", "tolerance_why",
            "published")


@dataclass(frozen=True)
class Preset:
    name: str
    paper: str  # the paper's title and arXiv id
    source: str  # the table(s) and section(s) the setting and its figures come from
    description: str
    settings: dict[str, Any]  # run options, as config.yaml names them
    setting_sources: dict[str, str]
    tolerance: float  # percentage points either side of a published figure
    tolerance_why: str
    published: dict[str, dict[str, float]]  # model key -> metric (pass@k) -> percent
    missing: str | None = None  # why figures are absent, where they are

    def figures_for(self, model: str) -> dict[str, float]:
        """The published figures for the model named ``model`` (a hub id, path or run folder name), or none."""
        key = model_key(model)
        return self.published.get(key, {}) if key else {}


def model_key(model: str) -> str | None:
    """``codellama-7b-python``, ``codegen-350m-mono``: the published model a name refers to, by its family,
    size and variant, wherever they appear in it (``codellama/CodeLlama-7b-Python-hf``, ``/w/codegen-350M-mono``)."""
    if match := CODELLAMA_NAME.search(model):
        return f"codellama-{match['size'].lower()}" + (f"-{match['variant'].lower()}" if match["variant"] else "")
    if match := CODEGEN_NAME.search(model):
        return f"codegen{match['generation']}-{match['size'].lower()}-{match['variant'].lower()}"
    return None


@functools.cache
def presets(path: Path = PRESETS_FILE) -> dict[str, Preset]:
    data = load_yaml_file(path)
    if not (isinstance(data, dict) and isinstance(data.get("papers"), dict) and isinstance(data.get("presets"), dict)):
        raise InputError("must be a mapping with 'papers' and 'presets'", file=str(path))
    return {name: _preset(name, entry, data["papers"], path) for name, entry in data["presets"].items()}


def _preset(name: str, entry: Any, papers: dict[str, Any], path: Path) -> Preset:
    missing = [key for key in REQUIRED if not isinstance(entry, dict) or key not in entry]
    if missing:
        raise InputError(f"preset {name!r} lacks {missing[0]!r}", file=str(path), field=missing[0])
    paper = papers.get(entry["paper"])
    if not isinstance(paper, dict):
        raise InputError(f"preset {name!r} names an unknown paper", file=str(path), field="paper")
    published = entry["published"] or {}
    if not all(isinstance(figures, dict) and all(isinstance(v, (int, float)) and 0 <= v <= 100
                                                 for v in figures.values()) for figures in published.values()):
        raise InputError(f"preset {name!r}: published figures must be percentages by metric", file=str(path),
                         field="published")
    return Preset(name=name, paper=f"{paper['title']} (arXiv:{paper['arxiv']})", source=str(entry["source"]),
                  description=str(entry["description"]), settings=dict(entry["settings"]),
                  setting_sources=dict(entry["setting_sources"]), tolerance=float(entry["tolerance"]),
                  tolerance_why=" ".join(str(entry["tolerance_why"]).split()), published=published,
                  missing=entry.get("missing"))


def preset(name: str) -> Preset:
    known = presets()
    if name not in known:
        raise InputError(f"unknown preset {name!r} (run-benchmark list --presets names them: "
                         f"{', '.join(sorted(known))})", field="preset")
    return known[name]

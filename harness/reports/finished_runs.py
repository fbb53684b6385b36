"""Reading finished run folders back (for reports and comparisons), with one-line errors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.jsonl import read_json_lines
from harness import model_families
from harness.errors import InputError
from harness.runs.folder.layout import Layout


# Options that change what is sampled or how it is scored (from each summary's recorded config).
SCORED_OPTIONS = ("n", "temperature", "top_p", "max_new_tokens", "max_length", "exclude_defective", "timeout",
                  "memory_mb", "feedback", "max_repairs", "max_reasoning_tokens",
                  "extra_body")  # None in runs without them


@dataclass(frozen=True)
class FinishedRun:
    directory: Path
    summary: dict[str, Any]

    @property
    def name(self) -> str:
        return self.directory.name

    @property
    def suite(self) -> str:
        return self.summary["suite"]["name"]

    @property
    def model(self) -> str:
        return str(self.summary.get("model", {}).get("model", "?"))

    @property
    def parameters(self) -> int | None:
        return self.summary.get("model", {}).get("parameters")

    @property
    def settings(self) -> dict[str, Any]:
        """What must match for two runs' numbers to be comparable side by side (``report`` groups by it,
        ``compare`` refuses runs that differ in it): the suite, the options that change what is sampled or
        how it is scored, and the checksums of the data file and the scored problems (None in runs made
        before they were recorded)."""
        config, suite = self.summary.get("config") or {}, self.summary.get("suite") or {}
        prompt_format = self.summary.get("prompt_format", config.get("prompt_format"))
        scored = {name: config.get(name) for name in SCORED_OPTIONS}
        return {"suite": self.suite, **scored, **_in_effect(config, prompt_format), "prompt_format": prompt_format,
                # Named only for SPM: runs made before the option, all PSM, compare with PSM runs.
                "infilling_mode": config.get("infilling_mode") if config.get("infilling_mode") == "spm" else None,
                "data_sha256": (suite.get("origin") or {}).get("sha256", suite.get("data_sha256")),
                "suite_sha256": suite.get("suite_sha256")}

    def problem_checksums(self) -> dict[str, str]:
        """Each scored problem's content checksum (``suite.problem_sha256``; empty in runs made before it)."""
        recorded = (self.summary.get("suite") or {}).get("problem_sha256")
        return {str(k): v for k, v in recorded.items()} if isinstance(recorded, dict) else {}

    def per_problem(self, metric: str) -> dict[str, float]:
        return {pid: entry[metric] for pid, entry in self.summary["per_problem"].items() if metric in entry}

    def family(self) -> tuple[str, str]:
        """Model family and variant as the run recorded them (``model.family``, detected from the model's
        config and tokenizer when it was loaded); from the model's name for runs that recorded none."""
        identity = self.summary.get("model", {})
        recorded = identity.get("family")
        if isinstance(recorded, dict) and isinstance(recorded.get("family"), str) and recorded["family"]:
            variant = recorded.get("variant")
            return model_families.display(recorded["family"], variant if isinstance(variant, str) else None)
        return model_families.from_name(self.model, str(identity.get("model_type", identity.get("backend", "?"))))

    @property
    def samples_file(self) -> Path:
        return Layout(self.directory).samples

    def samples(self) -> list[dict[str, Any]]:
        path = self.samples_file
        records = read_json_lines(path)
        for line_no, record in records:
            _require(all(key in record for key in SAMPLE_KEYS) and isinstance(record["turns"], list)
                     and all(isinstance(t, dict) and "raw" in t for t in record["turns"]),
                     path, f"line {line_no}", f"a sample line with {', '.join(SAMPLE_KEYS)}")
        return [record for _, record in records]


def _in_effect(config: dict[str, Any], prompt_format: Any) -> dict[str, Any]:
    """Settings that did nothing, as runs made before they were left unrecorded wrote them: feedback off
    (``none`` or absent) with its ``max_repairs``; a reasoning budget in the base format, which has none."""
    effective: dict[str, Any] = {}
    if config.get("feedback") in (None, "none"):
        effective.update(feedback=None, max_repairs=None)
    if prompt_format == "base":
        effective["max_reasoning_tokens"] = None
    return effective


def load_run(directory: str | Path) -> FinishedRun:
    folder = Path(directory)
    path = Layout(folder).summary
    if not path.is_file():
        raise InputError("not a finished run folder (no summary.json)", file=str(folder))
    try:
        summary = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: not UTF-8, not JSON
        raise InputError(f"cannot read summary ({exc})", file=str(path)) from None
    if isinstance(summary, dict):  # an optional entry set to null reads as absent (its readers' default)
        summary = {k: v for k, v in summary.items() if v is not None or k not in OPTIONAL_MAPPINGS}
    _check_summary(summary, path)
    return FinishedRun(folder, summary)


REQUIRED = ("suite", "per_problem", "overall")
OPTIONAL_MAPPINGS = ("per_category", "model", "config", "timings", "tiers")


SAMPLE_KEYS = ("task_id", "unit", "program", "status", "passed", "turns")


def _require(ok: bool, path: Path, field: str, what: str) -> None:
    if not ok:
        raise InputError(f"must be {what} (was the file edited by hand?)", file=str(path), field=field)


def _is_score(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1


def _scores_ok(entry: dict[str, Any]) -> bool:
    return all(_is_score(value) for key, value in entry.items()
               if key.startswith("pass@") or (key == "pass_rate" and value is not None))


def _check_summary(summary: Any, path: Path) -> None:
    """The entries reports and comparisons read, with their types, so a hand-edited summary is one line."""
    _require(isinstance(summary, dict), path, "summary", "a JSON object")
    for key in REQUIRED:
        if key not in summary:
            raise InputError("summary lacks a required entry", file=str(path), field=key)
    for key in (*REQUIRED, *OPTIONAL_MAPPINGS):
        _require(key not in summary or isinstance(summary[key], dict), path, key, "a mapping")
    _require(isinstance(summary["suite"].get("name"), str), path, "suite.name", "a string")
    for key in ("per_problem", "per_category", "tiers"):
        entries = (summary.get(key) or {}).values()
        _require(all(isinstance(entry, dict) for entry in entries), path, key, "a mapping of names to scores")
        _require(all(_scores_ok(entry) for entry in entries), path, key, "scores between 0 and 1")
    _require(_scores_ok(summary["overall"]), path, "overall", "scores between 0 and 1")
    ks = summary.get("ks", [1])
    _require(isinstance(ks, list) and all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in ks),
             path, "ks", "a list of positive integers")


def distinct_runs(runs: list[FinishedRun]) -> tuple[list[FinishedRun], list[FinishedRun]]:
    """The runs without repeats, and the repeats left out: the same folder given twice, or a copy of a run
    (another folder whose summary is identical, timings and all, which no second real run produces)."""
    kept: list[FinishedRun] = []
    dropped: list[FinishedRun] = []
    seen: set[Path] = set()
    fingerprints: set[str] = set()
    for run in runs:
        fingerprint = json.dumps(run.summary, sort_keys=True, default=str)
        folder = run.directory.resolve()
        if folder in seen or fingerprint in fingerprints:
            dropped.append(run)
            continue
        seen.add(folder)
        fingerprints.add(fingerprint)
        kept.append(run)
    return kept, dropped


def run_labels(runs: list[FinishedRun]) -> list[str]:
    """A distinct display name per run: its folder's name, with as many parent folders as it takes to tell
    runs of the same name apart (and a position when even the full paths are the same)."""
    folders = [run.directory.resolve() for run in runs]
    labels = []
    for folder in folders:
        depth = 1
        while depth < len(folder.parts) and any(other.parts[-depth:] == folder.parts[-depth:] and other != folder
                                                for other in folders):
            depth += 1
        labels.append("/".join(folder.parts[-depth:]))
    return [label if labels.count(label) == 1 else f"{label} #{labels[:i + 1].count(label)}"
            for i, label in enumerate(labels)]

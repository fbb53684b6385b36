"""A preset as a run config: its settings under the --config file's values and the flags, and the options
where the run departs from the preset (recorded in the config as ``preset_deviations``)."""

from __future__ import annotations

from typing import Any

from harness.config import RunConfig, build_config
from harness.errors import InputError
from harness.presets.catalog import preset

# Options that change what a run measures: where the run's value differs from the preset's, it is a
# deviation (the data file is not: its checksum is recorded with the suite).
DEVIATION_OPTIONS = ("suite", "n", "k", "temperature", "top_p", "max_new_tokens", "prompt_format", "infilling_mode",
                     "limit", "problems", "exclude_defective", "feedback", "max_repairs", "max_length",
                     "extra_body")


def config_with_preset(file_values: dict[str, Any], flag_values: dict[str, Any], source: str) -> RunConfig:
    """The run's config: the preset named by ``--preset`` (or the file's ``preset``) under the file's values
    and the flags. A file's recorded ``preset_deviations`` is derived, so it is computed again."""
    file_values = dict(file_values)
    file_values.pop("preset_deviations", None)
    name = flag_values.get("preset") or file_values.pop("preset", None)
    if name is not None and not isinstance(name, str):
        raise InputError("must be a preset's name (run-benchmark list --presets)", file=source, field="preset")
    if not name:
        return build_config(file_values, flag_values, source)
    chosen = preset(name)
    as_published = build_config(chosen.settings, {}, f"preset {name}")
    config = build_config({**chosen.settings, **file_values}, {**flag_values, "preset": name}, source)
    config.preset_deviations = {option: {"preset": getattr(as_published, option), "run": getattr(config, option)}
                                for option in DEVIATION_OPTIONS
                                if getattr(config, option) != getattr(as_published, option)}
    return config

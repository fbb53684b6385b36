"""``run-benchmark list --presets``: every preset with its paper, table and section, settings and the models
it has figures for."""

from __future__ import annotations

from harness.presets.catalog import presets


def print_presets() -> None:
    for preset in presets().values():
        settings = ", ".join(f"{name}={value}" for name, value in preset.settings.items())
        print(f"{preset.name}: {preset.description}")
        print(f"    source: {preset.paper}, {preset.source}")
        print(f"    settings: {settings}; tolerance +-{preset.tolerance:g} points")
        models = ", ".join(preset.published) or f"none ({preset.missing})"
        print(f"    published figures for: {models}")

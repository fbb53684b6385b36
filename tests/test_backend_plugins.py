"""A backend from outside the harness: a module and the minimal package metadata that registers it in the
``harness.backends`` entry-point group, put on PYTHONPATH, with flags of its own, run by the real CLI."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from conftest import ROOT, run_cli

PLUGIN = '''
from harness.backends.base import GenerationResult
from harness.backends.spec import BackendSpec, Option, integer


class EchoBackend:
    """Answers every turn with the reference solution, after ``repeat`` comment lines naming ``prefix``."""

    name = "echo"
    requires_reference = True
    supports_infilling = True
    supports_chat = prefers_chat = False

    def __init__(self, prefix, repeat):
        self.prefix, self.repeat = prefix, repeat

    def identity(self):
        return {"backend": "echo", "model": "echo", "prefix": self.prefix}

    def generate(self, requests, sampling):
        return [GenerationResult(text=f"# {self.prefix}\\n" * self.repeat + r.reference) for r in requests]


BACKEND = BackendSpec("echo", "the reference solutions, echoed", lambda config, device: EchoBackend(
    config.echo_prefix, config.echo_repeat), options=(
    Option("echo_prefix", str, "echo", "the comment written before every answer"),
    Option("echo_repeat", int, 1, "how many times (1 to 3)", check=integer(1, 3), aliases=("echo_level",)),
))

# Its option's flag is the run command's own --num-samples (no config field has that name).
CLASH = BackendSpec("clash", "takes a flag of run", BACKEND.build, options=(
    Option("num_samples", int, 1, "clashes with --num-samples"),
))
'''

# Plug-ins whose options' flags are the run command's own flags that are not config fields (--help,
# --config, --no-dedup), or another plug-in's, or whose options are not Options, or are named like what
# config.yaml records besides the options: each must be left out, never break every command.
CARELESS_NAMES = ("helpful", "configured", "nodedup", "echo2", "named", "typed", "inputsopt", "shardsopt", "zecho")
CARELESS = """
from harness.backends.spec import BackendSpec, Option

def _spec(name, option):
    return BackendSpec(name, "careless", lambda config, device: None, options=(option,))

HELPFUL = _spec("helpful", Option("help", str, "x", "clashes with --help"))
CONFIGURED = _spec("configured", Option("config", str, "x", "clashes with --config"))
NODEDUP = _spec("nodedup", Option("no_dedup", bool, False, "clashes with --no-dedup"))
ECHO2 = _spec("echo2", Option("echo-prefix", str, "x", "clashes with the echo plug-in's --echo-prefix"))
NAMED = BackendSpec("named", "options named, not declared", lambda config, device: None, options=("named_level",))
TYPED = _spec("typed", Option("typed_level", dict, {}, "a type no check or flag knows"))
# Named like what a run's config.yaml records besides its options: such a run could never resume.
INPUTSOPT = _spec("inputsopt", Option("inputs", str, "x", "clashes with config.yaml's inputs"))
SHARDSOPT = _spec("shardsopt", Option("shards", int, 1, "clashes with config.yaml's shards"))
ZECHO = _spec("zecho", Option("echo_level", int, 1, "clashes with the echo plug-in's alias --echo-level"))
"""


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory) -> str:
    """A folder holding the plug-in module and a ``*.dist-info`` whose entry_points.txt registers it, plus
    one entry point that cannot load and one whose flag run already has; the PYTHONPATH that finds them and
    the harness."""
    folder = tmp_path_factory.mktemp("plugins")
    (folder / "echo_backend.py").write_text(PLUGIN)
    (folder / "careless_backends.py").write_text(CARELESS)
    (folder / "exits_at_import.py").write_text("import sys\nsys.exit('a script, not a plug-in')\n")
    info = folder / "echo_backend-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-backend\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[harness.backends]\necho = echo_backend:BACKEND\n"
                                           "broken = no_such_module:BACKEND\nexits = exits_at_import:BACKEND\n"
                                           "clash = echo_backend:CLASH\n"
                                           + "".join(f"{name} = careless_backends:{name.upper()}\n"
                                                     for name in CARELESS_NAMES))
    return f"{ROOT}{os.pathsep}{folder}"


def test_a_plugin_backend_runs_the_core_suite_with_its_own_flag(plugin_path, tmp_path):
    result = run_cli("run", "--backend", "echo", "--echo-prefix", "plugged-in marker", "--echo-repeat", "2",
                     "--suite", "core", "--results-dir", str(tmp_path), "--run-name", "echo", "--no-verdict-cache",
                     env_extra={"PYTHONPATH": plugin_path})
    assert result.returncode == 0, result.stderr[-3000:]
    folder = tmp_path / "echo"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["overall"]["pass@1"] == 1.0 and summary["overall"]["pass_rate"] == 1.0
    assert summary["model"] == {"backend": "echo", "model": "echo", "prefix": "plugged-in marker"}
    samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    assert len({s["task_id"] for s in samples}) == 42
    assert all(s["program"].count("# plugged-in marker\n") >= 2 for s in samples)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["backend"] == "echo" and config["echo_prefix"] == "plugged-in marker"
    assert config["echo_repeat"] == 2
    # A plug-in that cannot be loaded is left out with a warning; it breaks nothing else.
    assert "broken" in result.stderr and "Traceback" not in result.stderr


def test_careless_plugins_are_left_out_and_every_command_still_works(plugin_path, tmp_path):
    """A plug-in that exits at import or whose option's flag is taken is left out with a warning naming
    it: ``list`` and ``run --help`` work and list the good plug-in only."""
    listed = run_cli("list", env_extra={"PYTHONPATH": plugin_path})
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr[-3000:]
    assert "  echo " in listed.stdout
    for name in ("exits", *CARELESS_NAMES):
        assert f"backend plug-in {name} " in listed.stderr, (name, listed.stderr)
        assert f"  {name} " not in listed.stdout, name
    helped = run_cli("run", "--help", env_extra={"PYTHONPATH": plugin_path})
    assert helped.returncode == 0 and "--echo-prefix" in helped.stdout, helped.stderr[-3000:]


@pytest.mark.parametrize("args,expected", [
    (["--backend", "echo", "--echo-repeat", "9"], "field 'echo_repeat'"),
    (["--backend", "echo", "--echo-repeat", "x"], "--echo-repeat"),
    (["--backend", "nope"], "unknown backend 'nope' (known: huggingface, openai, reference, echo;"),
    (["--backend", "broken"], "unknown backend 'broken'"),
    (["--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--echo-prefix", "x"],
     "field 'echo_prefix': is an option of backend echo, not of openai"),
])
def test_bad_backend_input_is_one_line_and_exit_2(plugin_path, tmp_path, args, expected):
    result = run_cli("run", *args, "--suite", "core", "--results-dir", str(tmp_path), "--run-name", "bad",
                     env_extra={"PYTHONPATH": plugin_path})
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1 and expected in errors[0], result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "bad").exists()


def test_a_plugin_taking_a_flag_of_run_is_left_out_and_breaks_no_command(plugin_path):
    result = run_cli("list", env_extra={"PYTHONPATH": plugin_path})
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "backend plug-in clash" in result.stderr and "--num-samples" in result.stderr, result.stderr
    assert "echo" in result.stdout


def test_without_the_plugin_its_backend_is_unknown(tmp_path):
    result = run_cli("run", "--backend", "echo", "--suite", "core", "--results-dir", str(tmp_path))
    assert result.returncode == 2 and "unknown backend 'echo'" in result.stderr


def test_built_in_backend_options_are_recorded_as_before():
    """The options the backends now declare are still flat keys of config.yaml, in the order the committed
    baseline's config.yaml (written before they moved) lists them, with the same values."""
    from harness.config import build_config, load_config_file

    path = ROOT / "results" / "baselines" / "core-tiny-codegen" / "config.yaml"
    recorded = yaml.safe_load(path.read_text())
    written = build_config(load_config_file(str(path)), {}).as_dict()
    keys = [key for key in written if key in recorded]
    assert keys == [key for key in recorded if key != "inputs"]
    assert {key: written[key] for key in keys} == {key: recorded[key] for key in keys}
    assert written["base_url"] == [] and written["device"] == "cpu" and written["kv_reuse"] is True


def test_the_registry_knows_every_run_flag_that_is_not_a_config_field():
    """``RUN_ONLY_FLAGS`` is what keeps a plug-in from taking the run command's other flags: a flag added to
    ``harness.run_flags`` that is no option's must be added there too (an option's flags, aliases included,
    the registry is given: ``harness.config.RESERVED_FLAGS``)."""
    import argparse

    from harness.backends.registry import RUN_ONLY_FLAGS, _flags
    from harness.config import FIELD_NAMES, RESERVED_FLAGS
    from harness.run_flags import add_run_options

    parser = argparse.ArgumentParser()
    add_run_options(parser)
    field_flags = {flag for name in FIELD_NAMES for flag in _flags(name)} | RESERVED_FLAGS
    run_only = {flag for flag in parser._option_string_actions if flag.startswith("--") and flag not in field_flags}
    assert run_only == RUN_ONLY_FLAGS

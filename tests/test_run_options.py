"""Every ``run`` option is declared once (issue 27, item 4): one record per option (``harness.config.RUN_OPTIONS``,
each a field of ``RunConfig``), from which its field and default, its check, its flag, its config-file keys, its
help and its place in a run folder's ``config.yaml`` all follow, and ``evaluate`` builds its flags from the same
records. These tests fail when an option is spelled anywhere else: a flag of ``run`` or ``evaluate`` that no
record declares, a help or default that differs from its record's, a field without a record, a table of keys
and flags in the docs that is not the records'. A switch set in a ``--config`` file is turned either way by its
flag, and the ``config.yaml`` of the committed runs reads back and is written again byte for byte."""

from __future__ import annotations

import argparse
import dataclasses
import glob
import re

import pytest
import yaml

from conftest import ROOT
from harness.backends.registry import built_in_options
from harness.cli import main, parser
from harness.commands import run_config
from harness.config import RECORDED_KEYS, RUN_OPTIONS, RunConfig, build_config, load_config_file

RECORDS = {option.name: option for option in RUN_OPTIONS}
SWITCHES = [option for option in RUN_OPTIONS if option.type is bool]


def _command(name: str) -> argparse.ArgumentParser:
    commands = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices[name]


def _flag_actions(command: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {flag: action for action in command._actions for flag in action.option_strings if flag.startswith("--")}


def test_every_run_config_field_is_one_record_in_recorded_order():
    fields = [field.name for field in dataclasses.fields(RunConfig) if field.name != "options"]
    assert [option.name for option in RUN_OPTIONS] == fields
    assert len(RECORDS) == len(RUN_OPTIONS)
    defaults = RunConfig()
    for option in RUN_OPTIONS:
        assert getattr(defaults, option.name) == option.default, option.name
    recorded = list(RunConfig().as_dict())
    assert [name for name in recorded if name in RECORDS] == fields  # config.yaml lists them in the records' order


def test_every_run_flag_comes_from_a_record():
    """Each flag of ``run`` is a record's (the run's or a backend's), with the record's help, and every record
    that has a flag has all of its spellings; only ``--help``, ``--config`` and the backend listing are the
    command's own."""
    actions = _flag_actions(_command("run"))
    declared = {flag: option for option in [*RUN_OPTIONS, *built_in_options()] if option.command_line
                for flag in option.flags}
    assert set(actions) - set(declared) == {"--help", "--config"}
    assert set(declared) <= set(actions)
    for flag, option in declared.items():
        assert actions[flag].dest == option.name, flag
        if option.name != "backend":  # its help adds the table of backends to the record's
            assert actions[flag].help == option.help, flag


def test_evaluate_takes_its_flags_from_the_same_records():
    actions = _flag_actions(_command("evaluate"))
    taken = [option for option in RUN_OPTIONS if option.evaluate]
    assert set(actions) - {"--help", "--samples"} == {flag for option in taken for flag in option.flags}
    for option in taken:
        action = actions[option.flag]
        assert (action.dest, action.help) == (option.name, option.help), option.name
        assert action.required if option.name == "suite" else action.default == option.default, option.name


def test_evaluate_checks_its_values_as_run_does(capsys, tmp_path):
    for flags, needle in ((["--workers", "0"], "must be at least 1"), (["--memory-mb", "63"], "must be at least 64"),
                          (["--k", "0"], "must be at least 1"), (["--timeout", "nan"], "finite")):
        with pytest.raises(SystemExit) as exit_:
            parser().parse_args(["evaluate", "--suite", "core", "--samples", "s.jsonl", *flags])
        assert exit_.value.code == 2 and needle in capsys.readouterr().err, flags
    args = parser().parse_args(["evaluate", "--suite", "core", "--samples", "s", "--dedup", "--no-verdict-cache",
                                "--no-overwrite", "--k", "1,2"])
    assert (args.dedup, args.verdict_cache, args.overwrite, args.k, args.memory_mb) == (True, False, False, [1, 2],
                                                                                         4096)


@pytest.mark.parametrize("switch", [option.name for option in SWITCHES])
def test_a_switch_in_a_config_file_is_turned_either_way_by_its_flag(switch, tmp_path):
    option = RECORDS[switch]
    extra = "shard: 0/1\n" if switch == "merge_when_complete" else ""
    for in_file, flag, expected in ((True, "--no-" + option.flag[2:], False), (False, option.flag, True)):
        config = tmp_path / "run.yaml"
        config.write_text(f"{switch}: {str(in_file).lower()}\n{extra}")
        args = parser().parse_args(["run", "--config", str(config), flag])
        assert getattr(run_config(args), switch) is expected, (switch, flag)


def test_a_switch_a_config_file_sets_is_turned_off_by_a_flag_end_to_end(tmp_path):
    """Through the whole command: what the run folder records is the flags' value, not the file's."""
    config = tmp_path / "run.yaml"
    config.write_text("dedup: true\nverdict_cache: true\nexclude_defective: false\n")
    argv = ["-q", "run", "--config", str(config), "--model", "reference", "--suite", "core", "--limit", "1",
            "--results-dir", str(tmp_path), "--run-name", "r", "--workers", "1", "--no-dedup", "--no-verdict-cache",
            "--exclude-defective"]
    assert main(argv) == 0
    recorded = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert (recorded["dedup"], recorded["verdict_cache"], recorded["exclude_defective"]) == (False, False, True)


@pytest.mark.parametrize("text,name,value", [
    ("n: 3", "n", 3), ("num-samples: 3", "n", 3), ("num_samples: 3", "n", 3), ("no-dedup: true", "dedup", False),
    ("no_verdict_cache: true", "verdict_cache", False), ("max-new-tokens: 9", "max_new_tokens", 9),
    ("no-kv-reuse: true", "kv_reuse", False), ("memory-mb: 128", "memory_mb", 128)])
def test_every_key_spelling_that_worked_still_does(text, name, value, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(text + "\n")
    assert getattr(build_config(load_config_file(str(config)), {}), name) == value


COMMITTED = sorted(glob.glob(str(ROOT / "results" / "real" / "*" / "config.yaml"))
                   + glob.glob(str(ROOT / "results" / "baselines" / "*" / "config.yaml")))


@pytest.mark.parametrize("path", COMMITTED, ids=lambda path: path.split("results/")[-1])
def test_a_committed_config_yaml_is_written_again_byte_for_byte(path):
    """Checksums and ``--resume`` compare configs: the same settings are recorded in the same words and order.
    A run recorded before an option existed lacks that key: the rest must still match byte for byte."""
    text = open(path, encoding="utf-8").read()
    recorded = yaml.safe_load(text)
    written = {**build_config(load_config_file(path), {}, path).as_dict(),
               **{key: recorded[key] for key in RECORDED_KEYS if key in recorded}}
    assert set(recorded) <= set(written)  # nothing recorded then is unknown now
    assert yaml.safe_dump({k: v for k, v in written.items() if k in recorded}, sort_keys=False) == text


def key_flag_table() -> str:
    """The table docs/commands.md shows: each option whose config keys and flags differ by more than ``_``
    against ``-``, as the records declare them."""
    rows = ["| option | config-file keys | flags |", "|---|---|---|"]
    for option in [*RUN_OPTIONS, *built_in_options()]:
        dashed = option.name.replace("_", "-")
        if option.type is bool:
            rows.append(f"| `{option.name}` | `{option.name}: true/false`, `no-{dashed}: true` | "
                        f"`{option.flag}`, `--no-{dashed}` |")
        elif option.aliases:
            keys = [option.name, *(alias.replace("_", "-") for alias in option.aliases)]
            rows.append(f"| `{option.name}` | {', '.join(f'`{key}`' for key in keys)} | "
                        f"{', '.join(f'`{flag}`' for flag in option.flags)} |")
        elif not option.command_line:
            rows.append(f"| `{option.name}` | `{option.name}` (recorded by --preset) | none |")
    return "\n".join(rows)


def test_the_docs_table_of_keys_and_flags_is_the_records():
    page = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
    shown = re.search(r"^\| option \| config-file keys \| flags \|\n(?:\|.*\n)+", page, re.M)
    assert shown, "docs/commands.md has no table of config keys and flags; add:\n" + key_flag_table()
    assert shown.group(0).strip() == key_flag_table(), "docs/commands.md's table differs; it should be:\n" + \
        key_flag_table()


def test_a_run_interrupted_before_an_option_existed_resumes_and_merges(tmp_path):
    """A folder whose config.yaml and part files were written before an option with a None default existed
    (here ``extra_body``): ``--resume`` keeps the recorded keys as they were, so the part files' fingerprint
    still matches and the merge takes them, rather than redoing the work and refusing them at the end."""
    import json

    from conftest import run_cli
    from harness.runs.folder.parts import FINGERPRINT
    from harness.runs.folder.record import fingerprint

    common = ["-q", "run", "--model", "reference", "--problems", "core/he-roman,core/he-is-anagram",
              "--batch-size", "1", "--results-dir", str(tmp_path), "--run-name", "r"]
    assert run_cli(*common).returncode == 0
    folder = tmp_path / "r"
    old = yaml.safe_load((folder / "config.yaml").read_text())
    del old["extra_body"]  # as a run started before --extra-body recorded it
    (folder / "config.yaml").write_text(yaml.safe_dump(old, sort_keys=False))
    lines = (folder / "samples.jsonl").read_text().splitlines(keepends=True)
    (folder / "parts").mkdir()
    header = json.dumps({FINGERPRINT: fingerprint(old)}) + "\n"
    (folder / "parts" / "rank0-old.jsonl").write_text(header + "".join(lines))
    (folder / "samples.jsonl").unlink()
    (folder / "summary.json").unlink()
    resumed = run_cli(*common, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (folder / "samples.jsonl").read_text().splitlines(keepends=True) == lines
    assert "extra_body" not in yaml.safe_load((folder / "config.yaml").read_text())

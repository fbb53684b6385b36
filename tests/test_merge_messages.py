"""``merge`` refuses a run folder with a link at one of the harness's names in one line that speaks of
``merge``'s own argument (RUN_DIR), not of ``run``'s ``--run-name``, which ``merge`` has not got."""

from __future__ import annotations

from conftest import refused_in_process


def test_merge_of_a_folder_with_a_planted_link_names_run_dir(tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / ".run-benchmark").touch()
    (folder / "config.yaml").write_text("suite: core\n")
    outside = tmp_path / "precious.json"
    outside.write_text("precious")
    (folder / "summary.json").symlink_to(outside)
    line = refused_in_process(["merge", str(folder)], capsys)
    assert "summary.json is a symbolic link" in line and "field 'run_dir'" in line, line
    assert "--run-name" not in line and "run_name" not in line, line
    assert outside.read_text() == "precious"

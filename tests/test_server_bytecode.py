"""The execution server's compiled modules are kept between commands (``sandbox/__pycache__``), as Python keeps a
module's bytecode: used while the sources and the interpreter are the ones they came from, compiled afresh
otherwise, and never written where Python is told not to write bytecode."""

from __future__ import annotations

import marshal
import sys

import pytest

from sandbox import bytecode


@pytest.fixture
def compiled(monkeypatch, tmp_path):
    """Every compilation ``server_bytecode`` makes (the real one), with the cache in ``tmp_path``."""
    monkeypatch.setattr(bytecode, "_CACHE", tmp_path)
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    made = []
    real = bytecode._compile

    def counting(*args):
        made.append(real(*args))
        return made[-1]

    monkeypatch.setattr(bytecode, "_compile", counting)
    return made


def build() -> bytes:
    return bytecode.server_bytecode.__wrapped__(sys.executable)


def test_the_compiled_server_is_kept_and_used_while_nothing_changed(compiled, tmp_path):
    first = build()
    assert build() == first and len(compiled) == 1
    [kept] = tmp_path.iterdir()
    assert kept.read_bytes()[128:] == first
    names = [name for name, _ in marshal.loads(first)]
    assert names[-1] == "sandbox.inside.server" and set(bytecode.SERVER_MODULES) <= set(names)


def test_a_changed_module_or_a_damaged_file_compiles_afresh(compiled, tmp_path, monkeypatch):
    first = build()
    source = bytecode._source
    monkeypatch.setattr(bytecode, "_source",
                        lambda name: source(name) + ("\nCHANGED = 1\n" if name.endswith(".reply") else ""))
    changed = build()
    assert len(compiled) == 2 and changed != first
    assert build() == changed and len(compiled) == 2
    [kept] = tmp_path.iterdir()
    whole = kept.read_bytes()
    kept.write_bytes(whole[:-100])  # cut off, with the sources' hash right
    assert build() == changed and len(compiled) == 3 and kept.read_bytes() == whole
    kept.write_bytes(b"0" * 64 + whole[64:])  # another version's sources
    assert build() == changed and len(compiled) == 4 and kept.read_bytes() == whole


def test_nothing_is_written_where_python_writes_no_bytecode(compiled, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    build()
    build()
    assert len(compiled) == 2 and not list(tmp_path.iterdir())

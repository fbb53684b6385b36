"""The execution server as the sandbox interpreter receives it: the bytecode of its modules.

In: the sources of the modules the server is made of (``SERVER_MODULES``) and the sandbox interpreter.
Out: their bytecode, compiled and marshalled by that interpreter, and the bootstrap that runs it. The
server starts from bytecode rather than from source: parsing the source leaves about 2 MB of the parser's
memory in the server for good, and every page the server holds is copied into each child's page table at
fork and torn down at its exit. The bootstrap makes each module (all under ``sandbox/inside/``, see
``sandbox.inside``) a module object of its package in ``sys.modules``, under its own name (so that their
``from sandbox.inside.x import y`` find each other), without importing anything.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import sys
from functools import lru_cache
from pathlib import Path

from sandbox.interpreter import SandboxUnavailable, run_python

# In the order they are run: each imports only those before it.
SERVER_MODULES = tuple("sandbox.inside." + name for name in (
    "wire.reasons", "wire.codec", "wire.exception_identity", "wire.channel", "job.printing", "job.candidate",
    "job.proxies", "job.evalplus", "job.plan", "job.checking", "confine.children", "confine.keyrings", "confine.bpf",
    "confine.signal_guard", "collect", "tests_process", "cheap_fork", "zygote", "cleanup", "ipc",
    "kernel_counters", "reply", "confine.syscall_filter", "server"))
# The packages they sit in, each before the modules in it: empty package objects in the sandbox (their
# ``__init__`` modules hold docstrings only, and are not sent).
SERVER_PACKAGES = tuple(dict.fromkeys(name.rsplit(".", depth)[0] for name in SERVER_MODULES
                                      for depth in range(name.count("."), 0, -1)))
# The code that decides a verdict: every module of the server, and the scorers' table and comparisons (those
# of printed values run in the harness process). The verdict cache's namespace hashes them.
DECIDING_MODULES = SERVER_MODULES + ("sandbox.scorers", "sandbox.equivalence", "sandbox.failed_check")

# Entries are (name, code), or (name, None) for a package.
SERVER_BOOTSTRAP = """import marshal, os, sys
_size, _code = int(sys.argv.pop(1)), b""
while len(_code) < _size:
    _chunk = os.read(0, _size - len(_code))
    if not _chunk:
        sys.exit(3)
    _code += _chunk
for _name, _body in marshal.loads(_code):
    _module = type(sys)(_name)
    sys.modules[_name] = _module
    _parent, _, _leaf = _name.rpartition(".")
    if _parent:
        setattr(sys.modules[_parent], _leaf, _module)
    if _body is None:
        _module.__path__ = []
    else:
        exec(_body, _module.__dict__)
del _code, _chunk, _body, _module
sys.modules["sandbox.inside.server"].main()
"""

_COMPILE = ("import json, marshal, sys\n"
            "modules = json.loads(sys.stdin.buffer.read())\n"
            "sys.stdout.buffer.write(marshal.dumps([(name, None if source is None else\n"
            "                                        compile(source, name.replace('.', '/') + '.py', 'exec'))\n"
            "                                       for name, source in modules]))\n")
# The folder that holds the ``sandbox`` package: a module's file is its dotted name under it.
_ROOT = Path(__file__).parent.parent


def _filename(name: str) -> str:
    return name.replace(".", "/") + ".py"


def _source(name: str) -> str:
    return (_ROOT / _filename(name)).read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def server_bytecode(python: str) -> bytes:
    """The server's modules compiled and marshalled by ``python`` itself: marshal data belongs to one
    interpreter version, and the sandbox interpreter need not be the harness's. When it is the harness's
    own (the default), they are compiled here, which saves starting an interpreter per command."""
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        return marshal.dumps([(name, None) for name in SERVER_PACKAGES]
                             + [(name, compile(_source(name), _filename(name), "exec", dont_inherit=True, optimize=0))
                                for name in SERVER_MODULES])
    sources = json.dumps([[name, None] for name in SERVER_PACKAGES]
                         + [[name, _source(name)] for name in SERVER_MODULES]).encode()
    bytecode = run_python(python, _COMPILE, "compile the execution server", stdin=sources)
    if not bytecode:
        raise SandboxUnavailable(f"sandbox python {python!r} does not run Python: it printed no bytecode")
    return bytecode


def deciding_code_sha256() -> str:
    """A hash of every module that decides verdicts: a change to any of them must miss the verdict cache."""
    digest = hashlib.sha256()
    for name in DECIDING_MODULES:
        digest.update(f"{name}\0".encode())
        digest.update(_source(name).encode())
    return digest.hexdigest()

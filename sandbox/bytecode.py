"""The execution server as the sandbox interpreter receives it: the bytecode of its modules.

In: the sources of the modules the server is made of (``SERVER_MODULES``) and the sandbox interpreter.
Out: their bytecode, compiled and marshalled by that interpreter, and the bootstrap that runs it. The
server starts from bytecode rather than from source: parsing the source leaves about 2 MB of the parser's
memory in the server for good, and every page the server holds is copied into each child's page table at
fork and torn down at its exit. The bootstrap makes each module a module object of a ``sandbox`` package
in ``sys.modules`` (so that their ``from sandbox.x import y`` find each other) without importing anything.
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
SERVER_MODULES = ("reasons", "codec", "exception_identity", "channel", "printing", "candidate", "proxies", "evalplus",
                  "plan", "checking", "children", "keyrings", "bpf", "signal_guard", "collect", "tests_process", "zygote",
                  "cleanup", "ipc", "reply", "syscall_filter", "server")
# The code that decides a verdict: every module of the server, and the scorers' table and comparisons (those
# of printed values run in the harness process). The verdict cache's namespace hashes them.
DECIDING_MODULES = SERVER_MODULES + ("scorers", "equivalence", "failed_check")

SERVER_BOOTSTRAP = """import marshal, os, sys
_size, _code = int(sys.argv.pop(1)), b""
while len(_code) < _size:
    _chunk = os.read(0, _size - len(_code))
    if not _chunk:
        sys.exit(3)
    _code += _chunk
_package = type(sys)("sandbox")
_package.__path__ = []
sys.modules["sandbox"] = _package
for _name, _body in marshal.loads(_code):
    _module = type(sys)("sandbox." + _name)
    sys.modules[_module.__name__] = _module
    setattr(_package, _name, _module)
    exec(_body, _module.__dict__)
del _code, _chunk, _body, _module
sys.modules["sandbox.server"].main()
"""

_COMPILE = ("import json, marshal, sys\n"
            "modules = json.loads(sys.stdin.buffer.read())\n"
            "sys.stdout.buffer.write(marshal.dumps([(name, compile(source, 'sandbox/%s.py' % name, 'exec'))\n"
            "                                       for name, source in modules]))\n")


def _source(name: str) -> str:
    return Path(__file__).with_name(f"{name}.py").read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def server_bytecode(python: str) -> bytes:
    """The server's modules compiled and marshalled by ``python`` itself: marshal data belongs to one
    interpreter version, and the sandbox interpreter need not be the harness's. When it is the harness's
    own (the default), they are compiled here, which saves starting an interpreter per command."""
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        return marshal.dumps([(name, compile(_source(name), f"sandbox/{name}.py", "exec", dont_inherit=True,
                                             optimize=0)) for name in SERVER_MODULES])
    sources = json.dumps([[name, _source(name)] for name in SERVER_MODULES]).encode()
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

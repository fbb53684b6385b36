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


# Where the compiled server is kept between commands, one file per sandbox interpreter, as Python keeps a module's
# bytecode: compiling it costs every command about 17 ms.
_CACHE = _ROOT / "sandbox" / "__pycache__"


@lru_cache(maxsize=None)
def server_bytecode(python: str) -> bytes:
    """The server's modules compiled and marshalled by ``python`` itself: marshal data belongs to one
    interpreter version, and the sandbox interpreter need not be the harness's. Kept in ``sandbox/__pycache__``
    under the interpreter's identity, with a hash of the sources it was compiled from: a changed module or a
    replaced interpreter compiles it afresh."""
    real = os.path.realpath(python)
    sources = [(name, _source(name)) for name in SERVER_MODULES]
    try:
        identity = os.stat(real)
    except OSError:  # no such interpreter: run_python says so
        return _compile(python, sources)
    digest = hashlib.sha256(repr((real, identity.st_size, identity.st_mtime_ns, sources)).encode()).hexdigest()
    cached = _CACHE / ("server-%s.marshal" % hashlib.sha256(real.encode()).hexdigest()[:16])
    try:  # the sources' hash, the bytecode's own (a damaged file is compiled afresh), the bytecode
        data = cached.read_bytes()
        if data[:64] == digest.encode() and data[64:128] == hashlib.sha256(data[128:]).hexdigest().encode():
            return data[128:]
    except OSError:
        pass
    bytecode = _compile(python, sources)
    if not sys.dont_write_bytecode:
        _store(cached, digest.encode() + hashlib.sha256(bytecode).hexdigest().encode() + bytecode)
    return bytecode


def _compile(python: str, sources: list[tuple[str, str]]) -> bytes:
    """The server's modules (``sources``) compiled by ``python``: here when it is the harness's own interpreter (the
    default), which saves starting one."""
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        return marshal.dumps([(name, None) for name in SERVER_PACKAGES]
                             + [(name, compile(source, _filename(name), "exec", dont_inherit=True, optimize=0))
                                for name, source in sources])
    payload = json.dumps([[name, None] for name in SERVER_PACKAGES] + [list(pair) for pair in sources]).encode()
    bytecode = run_python(python, _COMPILE, "compile the execution server", stdin=payload)
    if not bytecode:
        raise SandboxUnavailable(f"sandbox python {python!r} does not run Python: it printed no bytecode")
    return bytecode


def _store(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all (concurrent commands may store it at once); silently nothing where the
    folder cannot be written (an installed package), as Python does with its own bytecode."""
    temporary = path.with_name("%s.%d.tmp" % (path.name, os.getpid()))
    try:
        path.parent.mkdir(exist_ok=True)
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except OSError:
        try:
            temporary.unlink()
        except OSError:
            pass


def deciding_code_sha256() -> str:
    """A hash of every module that decides verdicts: a change to any of them must miss the verdict cache."""
    digest = hashlib.sha256()
    for name in DECIDING_MODULES:
        digest.update(f"{name}\0".encode())
        digest.update(_source(name).encode())
    return digest.hexdigest()

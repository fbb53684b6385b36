"""The sandbox's filesystem as bubblewrap's arguments.

In: the system's read-only folders, what of the interpreter to bind (``isolation.interpreter_binds``) and the
size of /tmp. Out: the arguments that build it, and the folders under /tmp that hold the interpreter (the
server leaves them alone when it cleans /tmp). A program sees a minimal /dev (no /dev/pts, no tty), a
size-capped /tmp, the system folders, and the interpreter's own files only: the folders made above them (the
repository around a virtual environment, the home folder around pyenv's) can be passed through but not
listed, and nothing in them can be opened that is not bound; ``/`` itself is read-only.
"""

from __future__ import annotations

from pathlib import Path

MIB = 1024 * 1024
DEVICES = ("null", "zero", "full", "random", "urandom")
# Folders made on the way to a bound path: others may pass through them (mode 0111), not list them.
PASS_THROUGH = "0111"


def _minimal_dev() -> list[str]:
    argv = ["--proc", "/proc", "--perms", "0755", "--dir", "/dev"]
    for name in DEVICES:
        argv += ["--dev-bind", f"/dev/{name}", f"/dev/{name}"]
    for number, name in enumerate(("stdin", "stdout", "stderr")):
        argv += ["--symlink", f"/proc/self/fd/{number}", f"/dev/{name}"]
    # The namespace's own POSIX message queues, for the server to remove after each job (sandbox.inside.ipc).
    return argv + ["--symlink", "/proc/self/fd", "/dev/fd", "--mqueue", "/dev/mqueue"]


def _inside(path: str, folders: list[str] | tuple[str, ...]) -> bool:
    return any(path == folder or path.startswith(folder.rstrip("/") + "/") for folder in folders)


def filesystem_args(system: list[str], folders: list[str], files: list[tuple[str, str]], hidden: list[str],
                    tmpfs_mb: int) -> tuple[list[str], list[str]]:
    """``(arguments, names under /tmp holding the interpreter)``. ``files`` are ``(source, destination)``:
    the interpreter's executable is bound at the path it is started by. ``hidden``: folders inside a bound
    one that programs must not see (a base installation's site-packages a virtual environment does not use)."""
    targets = list(folders) + [destination for _, destination in files]
    under_tmp = sorted({Path(p).relative_to("/tmp").parts[0] for p in targets if p.startswith("/tmp/")})
    # /tmp's tmpfs before the binds: bwrap applies its arguments in order, and a tmpfs mounted after them
    # would hide whatever was bound below /tmp.
    argv = _minimal_dev() + ["--perms", "01777", "--size", str(tmpfs_mb * MIB), "--tmpfs", "/tmp"]
    made = {"/", "/tmp", "/dev"}
    for name in under_tmp:
        argv += ["--perms", PASS_THROUGH, "--size", str(MIB), "--tmpfs", f"/tmp/{name}"]
        made.add(f"/tmp/{name}")

    def bind(source: str, destination: str, perms: str) -> None:
        for parent in reversed(Path(destination).parents):
            text = str(parent)
            if text not in made and not _inside(text, system):
                argv.extend(["--perms", perms, "--dir", text])
                made.add(text)
        argv.extend(["--ro-bind", source, destination])

    for path in system:
        bind(path, path, "0755")
    for folder in folders:
        bind(folder, folder, PASS_THROUGH)
    for source, destination in files:
        bind(source, destination, PASS_THROUGH)
    for folder in hidden:
        argv += ["--perms", PASS_THROUGH, "--tmpfs", folder, "--remount-ro", folder]
    for name in under_tmp:
        argv += ["--remount-ro", f"/tmp/{name}"]
    return argv + ["--remount-ro", "/"], under_tmp

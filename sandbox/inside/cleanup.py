"""Between jobs: nothing a job left may reach the next.

In: the server's job directory and its tests' process after a job. Out: every process the job left
killed and reaped (double-forked daemons included) and none left (checked), the channel's pipes emptied, the
tests' process replaced if the program changed it or its pipes, and the job directory made anew.
"""

import os
import signal
import stat
import time


def fresh_workdir(workdir, work_root, reserved, is_pid1):
    """The job directory, made anew for every job under the same name, and inside the sandbox, where /tmp is this
    server's own, nothing else in /tmp. Never reused, even empty: what a program can set on a directory (its times,
    mode, extended attributes and ACLs, inode flags) would reach the next program, and the one trace all of them
    leave, its ctime, moves only once per clock tick on kernels before 6.13, where a quick program's change would
    go unseen. An empty directory goes in one call, as cheap as looking at it."""
    if workdir is not None:
        try:
            os.rmdir(workdir)
            gone = True
        except OSError:  # not empty, or no longer a directory of ours
            gone = False
        left = set(os.listdir(work_root)) - reserved if is_pid1 else ()
        if left:
            for entry in left:
                remove(os.path.join(work_root, entry))
            if set(os.listdir(work_root)) - reserved:
                # Something could not be removed: end this server; the pool starts a fresh one
                # with an empty /tmp, so nothing reaches the next job.
                os._exit(3)
        elif not gone:
            remove(workdir)
    # Made anew under the same name where it is free: the zygote is sent each name (it sets HOME and TMPDIR for
    # the programs it forks) and its memory, which every later program reads, may keep them all, so that new names
    # would count the earlier jobs.
    path = workdir
    while True:
        path = path or os.path.join(work_root, "exec-" + os.urandom(6).hex())
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            path = None
            continue
        # The tests' process inherits these when it is forked; the zygote sets a program's (``Zygote.spawn``).
        os.environ["HOME"] = path
        os.environ["TMPDIR"] = path
        return path


# How long the processes a job left may take to be gone (a process that has touched 4 GiB takes the kernel about
# a second to tear down). Past it, or if they keep coming back, the server exits and its namespace goes with it.
GONE_WITHIN_SECONDS = 10.0


class LeftoverProcesses(Exception):
    """Processes of a finished job that could not be made to go: the server must not run another job."""


def kill_leftovers(tests, is_pid1, zygote=None):
    """Kill everything the job left behind, setsid daemons included, and reap it, until a listing finds
    nothing but the tests' process (``LeftoverProcesses`` when that has not happened in
    ``GONE_WITHIN_SECONDS``). Then empty the channel's pipes, so that nothing a job wrote reaches the next.
    Returns the tests' process to keep, or None when it died or was changed and has been ended (a new one is
    due). The zygote (its pid) is left alone too."""
    keep = tests.pid if tests is not None else None
    deadline, pause = None, 0.0005
    while True:
        tests, keep = _reap(tests, keep)  # zombies first: they are gone once reaped
        others = [pid for pid in processes(is_pid1) if pid != keep and pid != zygote]
        if not others:  # the listing after the last kill: nothing of the job is left
            break
        if deadline is None:
            deadline = time.monotonic() + GONE_WITHIN_SECONDS
        elif time.monotonic() > deadline:
            raise LeftoverProcesses("%d processes of the last job are still there" % len(others))
        for pid in others:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(pause)  # a killed process may take a while to exit (tearing down its memory)
        pause = min(pause * 2, 0.01)
    if tests is not None:
        if tests.tampered():
            tests.end()
            return None
        tests.drain()
    return tests


def _reap(tests, keep):
    try:
        while True:
            pid = os.waitpid(-1, os.WNOHANG)[0]
            if not pid:
                break
            if pid == keep:  # killed during the job: a new one for the next
                tests.closed()
                tests = keep = None
    except ChildProcessError:
        pass
    return tests, keep


def processes(is_pid1):
    """Processes to consider: in a PID namespace of our own, all but this one; else our children
    (what a program double-forks reparents to us, the subreaper)."""
    if not is_pid1:
        return _children()
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit() and entry != "1"]

def _children():
    me = str(os.getpid())
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me:
                children.append(int(entry))
    return children

def remove(path):
    """Remove a file or a tree a program may have made unreadable (modes 0, read-only folders).
    Iterative and silent: whatever stays behind is caught by the check in ``fresh_workdir``."""
    pending, folders = [path], []
    while pending:
        current = pending.pop()
        try:
            info = os.lstat(current)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode):
            try:
                os.unlink(current)
            except OSError:
                pass
            continue
        try:
            os.chmod(current, 0o700)
        except OSError:
            pass
        folders.append(current)
        try:
            pending.extend(os.path.join(current, entry) for entry in os.listdir(current))
        except OSError:
            pass
    for folder in reversed(folders):
        try:
            os.rmdir(folder)
        except OSError:
            pass

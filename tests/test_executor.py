"""Each distinct program runs once per run; verdicts are reused across runs only for the same
(program, tests, sandbox config); nothing one job leaves behind is visible to the next."""

from __future__ import annotations

from harness.execution.executor import Executor
from harness.execution.verdict_cache import VerdictCache
from sandbox.pool import Job, Limits, SandboxPool

GOOD = Job(program="def f(x):\n    return x + 1\n", mode="assert", limits=Limits(), entry_point="f",
           test="def check(f):\n    assert f(1) == 2\n")
BAD = Job(program="def f(x):\n    return x\n", mode="assert", limits=Limits(), entry_point="f",
          test="def check(f):\n    assert f(1) == 2\n")
SLOW = Job(program="while True:\n    pass\n", mode="assert", limits=Limits(wall_seconds=1, cpu_seconds=1),
           entry_point="", test="")


def test_duplicates_run_once_and_share_the_verdict(tmp_path):
    with SandboxPool(workers=2, preload=()) as pool:
        executor = Executor(pool, dedup=True)
        results = executor.run([GOOD, BAD, GOOD, GOOD, BAD])
    assert [r.passed for r in results] == [True, False, True, True, False]
    assert [r.origin for r in results] == ["run", "run", "duplicate", "duplicate", "duplicate"]
    assert executor.stats.as_dict() == {"requested": 5, "executed": 2, "duplicates": 3, "cache_hits": 0}


def test_without_dedup_every_job_runs():
    with SandboxPool(workers=2, preload=()) as pool:
        executor = Executor(pool, dedup=False)
        results = executor.run([GOOD, GOOD])
    assert [r.origin for r in results] == ["run", "run"]
    assert executor.stats.executed == 2


def test_cache_reuses_verdicts_only_for_the_same_job_and_sandbox(tmp_path):
    cache_path = tmp_path / "verdicts.sqlite"
    with SandboxPool(workers=2, preload=()) as pool:
        first = Executor(pool, cache=VerdictCache(cache_path, pool.python))
        assert [r.passed for r in first.run([GOOD, BAD, SLOW])] == [True, False, False]
    with SandboxPool(workers=2, preload=()) as pool:
        second = Executor(pool, cache=VerdictCache(cache_path, pool.python))
        again = second.run([GOOD, BAD, SLOW])
        # Changing a limit changes the key: no reuse.
        other = second.run([Job(**{**GOOD.__dict__, "limits": Limits(memory_mb=1024)})])
    assert [r.origin for r in again] == ["cache", "cache", "run"]  # timeouts are never cached
    assert [r.passed for r in again] == [True, False, False] and again[2].status == "timeout"
    assert other[0].origin == "run"
    assert second.stats.cache_hits == 2 and second.stats.executed == 2


def test_a_cached_row_this_version_cannot_read_is_a_miss(tmp_path):
    """A row written with other fields (another version's ``Execution``) or torn is executed again, never
    a crash of the command."""
    import sqlite3

    cache_path = tmp_path / "verdicts.sqlite"
    with SandboxPool(workers=1, preload=()) as pool:
        executor = Executor(pool, cache=VerdictCache(cache_path, pool.python))
        assert executor.run([GOOD])[0].origin == "run"
        for unreadable in ('{"passed": true, "a_field_of_another_version": 1}', '{"passed": tr'):
            with sqlite3.connect(cache_path) as db:
                db.execute("UPDATE verdicts SET execution = ?", (unreadable,))
            again = Executor(pool, cache=VerdictCache(cache_path, pool.python)).run([GOOD])
            assert again[0].origin == "run" and again[0].passed


class Interrupted(Exception):
    """Stands for Ctrl-C arriving while a batch executes."""


def test_verdicts_finished_before_an_interruption_are_cached(tmp_path):
    """An interrupted batch (a long ``evaluate``) keeps the verdicts it finished: the rerun takes them from
    the cache and executes only the rest."""
    cache_path = tmp_path / "verdicts.sqlite"
    other = Job(**{**GOOD.__dict__, "program": "def f(x):\n    return 1 + x\n"})
    done = []

    def interrupt_after_two(count: int) -> None:
        done.append(count)
        if len(done) == 2:
            raise Interrupted

    with SandboxPool(workers=1, preload=()) as pool:
        first = Executor(pool, cache=VerdictCache(cache_path, pool.python))
        try:
            first.run([GOOD, BAD, other], on_done=interrupt_after_two)
        except Interrupted:
            pass
        else:
            raise AssertionError("the interruption did not reach the caller")
        assert first.stats.executed == 2
        second = Executor(pool, cache=VerdictCache(cache_path, pool.python))
        again = second.run([GOOD, BAD, other])
    assert sorted(r.origin for r in again) == ["cache", "cache", "run"]
    assert [r.passed for r in again] == [True, False, True]
    assert second.stats.cache_hits == 2 and second.stats.executed == 1


def test_nothing_left_behind_reaches_the_next_job():
    """A job that litters its directory and /tmp, and locks its directory, cannot pass anything on."""
    litter = Job(program=(
        "import os\n"
        "open('note.txt', 'w').write('from job 1')\n"
        "open('/tmp/shared-note.txt', 'w').write('from job 1')\n"
        "os.mkdir('sub')\n"
        "os.chmod('sub', 0)\n"
        "os.chmod('.', 0o500)\n"
        "def f():\n    return 1\n"), mode="assert", limits=Limits(), entry_point="f",
        test="def check(f):\n    assert f() == 1\n")
    reader = Job(program=(
        "import os\n"
        "def f():\n"
        "    return (os.path.exists('note.txt'), os.path.exists('/tmp/shared-note.txt'), os.listdir('.'),\n"
        "            os.access('.', os.W_OK))\n"), mode="assert", limits=Limits(), entry_point="f",
        test="def check(f):\n    assert f() == (False, False, [], True), f()\n")
    deep = Job(program=(  # a tree deeper than PATH_MAX, with an unreadable bottom, in /tmp
        "import os\n"
        "os.chdir('/tmp')\n"
        "for _ in range(40):\n"
        "    os.mkdir('d' * 200)\n"
        "    os.chdir('d' * 200)\n"
        "open('deep-note.txt', 'w').write('from the deep')\n"
        "os.chmod('.', 0)\n"
        "def f():\n    return 1\n"), mode="assert", limits=Limits(), entry_point="f",
        test="def check(f):\n    assert f() == 1\n")
    tmp_reader = Job(program="import os\ndef f():\n    return [e for e in os.listdir('/tmp') if not e.startswith('exec-')]\n",
                     mode="assert", limits=Limits(), entry_point="f", test="def check(f):\n    assert f() == [], f()\n")
    with SandboxPool(workers=1, preload=()) as pool:  # one worker: each reader runs right after the litter
        results = [pool.run_one(job) for job in (litter, reader, litter, reader, deep, tmp_reader, reader)]
    assert [r.passed for r in results] == [True] * 7, [r.reason for r in results]

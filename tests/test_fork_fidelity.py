"""A program's process behaves as one that ``fork()`` made (issue 30's change: the zygote forks it with a raw
``clone``, ``sandbox.inside.cheap_fork.ForkBeside``), so that a correct program passes as it does elsewhere."""

from __future__ import annotations

from sandbox.pool import Job, Limits, SandboxPool
from test_sandbox_hostile import require_full_isolation

LIMITS = Limits(wall_seconds=4, cpu_seconds=3, memory_mb=1024, processes=32, output_bytes=200_000)

# A thread signals the main thread and reads its CPU clock: the C library finds the main thread's kernel id in
# its thread descriptor, which fork() updates in the child and a raw clone must too (else the ids are the
# zygote's: ProcessLookupError, EINVAL).
MAIN_THREAD_BY_ID = """
import signal, threading, time
got = []
signal.signal(signal.SIGUSR1, lambda *_: got.append("signalled"))
def other():
    main = threading.main_thread().ident
    try:
        signal.pthread_kill(main, signal.SIGUSR1)
        got.append(time.clock_gettime(time.pthread_getcpuclockid(main)) > 0)
    except OSError as error:
        got.append(repr(error))
thread = threading.Thread(target=other)
thread.start()
thread.join()
time.sleep(0.01)
print(sorted(map(str, got)))

def double(x):
    return 2 * x
"""


def test_a_thread_reaches_the_main_thread_by_its_id():
    require_full_isolation()
    with SandboxPool(workers=1, preload=()) as pool:
        result = pool.run_one(Job(program=MAIN_THREAD_BY_ID, mode="assert", limits=LIMITS,
                                  test="def check(candidate):\n    assert candidate(2) == 4\n", entry_point="double"))
    assert result.passed and result.stdout == "['True', 'signalled']\n", result

"""The code that runs INSIDE the isolation: the execution server and every module it is made of.

The wall. Everything under this folder runs in the sandbox, next to the programs under test: in the execution
server, its zygote and tests' process, and the processes forked for each job. It gets there as bytecode, not as
files: the harness compiles these modules (``sandbox.bytecode``, whose ``SERVER_MODULES`` gives their load
order) and sends them to the sandbox interpreter (any Python 3.8+, not necessarily the harness's), which runs
them behind the isolation layers (``sandbox.isolation``). The harness process imports a few of them as well
(the codec and the reasons for the printed-value comparisons, the syscall filter's builder, the reply's
signal names). The rest of ``sandbox/`` runs in the harness process only and stays on this side of the wall:
it starts the servers, sends the jobs and, for printed values, decides.

The rule. Standard library only, and each other: nothing of the harness (``harness``), nothing of the
sandbox's harness-side modules (``sandbox.pool``, ``sandbox.scorers``, ``sandbox.isolation``, ...), no
third-party package, all of which are absent in there (the ``sandbox-inside`` import-linter contract in
pyproject.toml, and ``tests/test_sandbox_layering.py``). The one exception: ``numpy`` and ``pandas``, imported
lazily, only in the functions that rebuild or compare values of their types (``wire.codec``'s decoding,
``job.evalplus``'s ``atol`` comparison, which does without numpy where it is missing): a program's value of
those types exists only where its interpreter has them. Import as little as possible, and late: every
page the server maps is copied into each child's page table at fork (``server``'s docstring). Whatever a
program does can reach what runs in its own process: the decision is made where the program cannot reach it
(the tests' process, or the harness).

* ``wire``: plain data and words that cross between processes (codec, reasons, exception identity, channel).
* ``job``: what a job's processes run after the fork: the program's side (printing, candidate) and the
  tests' side (proxies, plan, checking, evalplus).
* ``confine``: what confines those processes: the fork's set-up (children) and the seccomp filters (bpf,
  syscall_filter, signal_guard, keyrings).
* here: the server and the worker's long-lived processes (server, zygote, tests_process), what keeps each fork
  from the zygote cheap (cheap_fork), watching a job (collect), its reply (reply), and what is cleaned or checked
  between jobs (cleanup, ipc, kernel_counters).
"""

"""The sandbox: runs generated programs behind isolation layers, and decides their verdicts where the program
cannot reach. It imports nothing of ``harness``. Two sides of one wall:

* ``sandbox.inside``: the execution server and every module it is made of, which run INSIDE the isolation
  (standard library only, sent to the sandbox interpreter as bytecode: its ``__init__`` states the rule).
* The rest runs in the harness process: ``pool`` (worker threads, one server each) and ``jobs`` (what crosses
  the pool: ``Job``, ``Limits``, ``Execution``); ``scorers`` (each scorer's job, what crosses, how it is
  decided) with ``equivalence`` and ``failed_check``; ``isolation`` (which layers this machine offers, the
  server's command line) with ``mounts``, ``uids`` and ``interpreter``; ``bytecode`` (compiles ``inside``).
"""

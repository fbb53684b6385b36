"""The commands that make a run folder. In: a ``RunConfig`` (``run``), a samples file (``evaluate``), a run
folder (``merge``) or a suite (``validate``). Out: a run folder (``config.yaml``, ``samples.jsonl``,
``summary.json``), written crash-safe and resumable, sharded across processes. Drives the stages in order:
suites -> generation -> execution -> scoring (``pipeline``, with ``group_work`` for each process's share;
``finalize`` ends a run and a merge alike). The folder itself is ``runs.folder`` (one class, ``RunFolder``);
launching many processes is ``runs.launch``; execution feedback is the stage ``harness.feedback``."""

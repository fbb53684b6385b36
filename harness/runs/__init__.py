"""The pipeline and its run folder. In: a ``RunConfig``. Out: a run folder (``config.yaml``,
``samples.jsonl``, ``summary.json``), written crash-safe and resumable, sharded across processes. Drives
the stages in order: suites -> generation -> execution -> scoring (``pipeline``, with ``group_work`` for
each process's share); ``evaluate`` and ``validate`` enter the same path with given programs instead of a
model. One writer for the folder (``run_directory``), one shape for its summary (``summary``)."""

"""The pipeline and its run folder. In: a ``RunConfig``. Out: a run folder (``config.yaml``,
``samples.jsonl``, ``summary.json``), written crash-safe and resumable, sharded across processes. Drives
the stages in order: suites -> generation -> execution -> scoring; ``evaluate`` and ``validate`` enter the
same path with given programs instead of a model."""

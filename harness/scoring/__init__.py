"""Stage 4, scores. In: each sample's execution (or its line in a run's parts). Out: its ``Verdict``
(``verdicts``), then pass@k (the unbiased estimator), MTPB's pass rate, turn-level attribution and
confidence intervals. Pure computation: no I/O, no backend, no sandbox."""

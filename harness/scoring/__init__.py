"""Stage 4, scores. In: per-sample verdicts. Out: pass@k (the unbiased estimator), MTPB's pass rate,
turn-level attribution and confidence intervals. Pure computation: no I/O, no backend, no sandbox."""

"""Stage 1, problems. In: YAML suites (``benchmarks/``) and published datasets (MTPB, HumanEval(+), MBPP).
Out: a ``Suite`` of ``Problem`` objects (turns or a code prompt, tests, scorer, reference solution).

Imports nothing else of the harness but ``harness.errors`` and ``harness.validate_input``."""

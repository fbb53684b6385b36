"""Stage 1, problems. In: YAML suites (``benchmarks/``) and published datasets (MTPB, HumanEval(+), MBPP).
Out: a ``Suite`` of ``Problem`` objects (turns or a code prompt, tests, scorer, reference solution).

Imports nothing else of the harness but the shared modules at its top (``errors``, ``validate_input``,
``cache_paths``, ``jsonl``); ``Suite`` and ``Problem`` live in ``problems``, whichever loader made them."""

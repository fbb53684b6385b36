"""Stage 3, programs and executions. In: conversations and per-problem time limits. Out: sandbox
``Execution`` records (status, printed values, errors), deduplicated and cached by the verdict cache.
The sandbox itself is the standalone ``sandbox`` package; this stage only builds its jobs and calls it."""

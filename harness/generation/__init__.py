"""Stage 2, prompts and generations. In: problems, a backend, sampling settings. Out: ``Conversation``
objects, each holding the program a sample wrote turn by turn (prompt formats, stop rules, truncation,
feedback templates)."""

"""Model backends: something that turns prompts into completions. In: ``GenerationRequest``s (prompt or
messages, token budget, seed, stop rule). Out: raw completions. ``registry`` is the table of backends (the
harness's own and plug-ins'), each declared with its options (``spec``)."""

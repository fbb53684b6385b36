"""The OpenAI-compatible HTTP backend (``backend``), its endpoint pool (``endpoints``) and the reading of its
replies (``openai_replies``)."""

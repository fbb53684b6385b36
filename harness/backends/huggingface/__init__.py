"""The Hugging Face transformers backend (``backend``) and what it needs: loading (``hf_loading``), the decoding
loop (``hf_decoding``), key/value cache reuse (``kv_reuse``), phase timing (``phases``), model families
(``families``) and where checkpoints come from (``checkpoints``: tiny, packaged, GGUF or plain)."""

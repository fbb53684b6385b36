"""Loaders for published benchmarks. The project ships loaders, never the data: each loader reads a
file the user gives, a copy it downloaded and cached earlier (checksum recorded), or the data bundled
with an installed package or the Hugging Face hub."""

"""Multi-turn program-synthesis benchmark harness."""

__version__ = "0.1.0"

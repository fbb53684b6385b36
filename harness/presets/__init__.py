"""The CodeGen and Code Llama papers' published settings as named presets, with the figures they print
(``papers.yaml``): ``catalog`` reads them and matches a model to its figures, ``apply`` turns one into a run
config and records where a run departs from it."""

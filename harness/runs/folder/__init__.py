"""The run folder, one noun: where its files are (``layout``), who may write there (``claim``), what a run
records there (``record``: ``config.yaml``), each process's part files (``parts``), and the one class the
commands ask (``run_folder.RunFolder``). Also the shapes of what is written there: a sample line
(``records``), ``summary.json`` (``summary``, ``metadata``) and the inputs' fingerprints (``fingerprints``)."""

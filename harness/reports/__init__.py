"""Stage 5, reports. In: finished run folders (read back from disk, never from live objects). Out: report
tables and figures, side-by-side comparisons with paired statistics, and the static HTML viewer."""

"""One run, many processes: which process this is and rank 0's plan broadcast (``distributed``), a job-array
task's share of the groups (``shards``), the intra-op thread count every process uses (``threads``), and
rank 0's progress over every process's part files (``progress``)."""

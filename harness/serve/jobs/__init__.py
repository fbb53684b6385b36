"""The service's work queue: admission and the worker processes (``scheduler``), killing a job's process tree
(``process_tree``) and running a request's jobs against a deadline (``dispatch``)."""

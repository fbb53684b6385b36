"""Inside the isolation (see ``sandbox.inside``): what confines a job's processes. The fork's set-up (``children``:
limits, session, descriptors) and the seccomp filters every program inherits (``bpf`` assembles them;
``syscall_filter``: no user namespaces; ``signal_guard``: no signals to the worker's processes; ``keyrings``:
no kernel keys)."""

"""``run-benchmark serve``: the sandbox as a local HTTP verification service (SandboxFusion's ``/run_code``,
``evaluate``'s verdicts at ``/verify``, ``/health``, ``/metrics``)."""

"""The scaled-out shape on one host or several: PostgreSQL, a Prefect server on it, a process
work pool with the kill switch's deployments, workers, and per-provider concurrency limits
(`killswitch scale up|down|status`; runbooks/scale-out.md)."""

"""The `benchmark` command: runner, classical baselines, report."""

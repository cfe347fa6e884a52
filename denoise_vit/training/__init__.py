"""Training: config, setup, schedule, engine, the run, data, DDP."""

"""The pipeline stages; each is a function of (config, workdir)."""

"""Tools run on gp_jax, not part of it: `bench` (speed and memory -> BENCHMARKS.md,
with `bench_torch`, the PyTorch reference) and `study` (the method study -> STUDY.md).
`make bench` and `make study` run them."""

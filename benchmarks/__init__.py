"""Benchmarks run by `make bench`: every `bench_*.py` module's `main()`."""

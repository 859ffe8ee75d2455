"""Test support shared by tests and benchmarks: fakes and event factories."""

"""Benchmarks (not tests): ``python -m tests.bench`` / ``make bench``. Nothing here asserts time."""

"""Benchmarks (``make bench``): measured, reported, never asserted as timings in the test suite."""

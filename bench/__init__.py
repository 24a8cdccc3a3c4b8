"""Benchmarks: each prints ratios against baselines measured in the same run; never part of the test suite."""

"""Smoke tests: each benchmark script starts and runs on a small input (the benchmarks themselves never run here)."""

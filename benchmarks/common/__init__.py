"""Shared machinery of the benchmarks: servers under test, load generation, watch probes."""

"""Benchmarks for santacore's bundle hash: workloads, pytest-benchmark suite, ratio report."""

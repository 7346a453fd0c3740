"""Benchmarks: time-to-containment against its lower bound, and fleet throughput."""

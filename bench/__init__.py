"""Benchmarks of the service against a bare-SDK baseline (not tests; see bench/README.md)."""

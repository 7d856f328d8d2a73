"""Benchmarks of the venue (python -m bench core / settlement / gateway / ab); see bench/README.md."""

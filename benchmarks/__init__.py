"""wggw benchmarks against the naive manager (see benchmarks/run.py and RESULTS.md)."""

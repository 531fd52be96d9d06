"""Benchmarks users can run: each prints its figures beside the floor, and one JSON object last."""

"""Benchmarks of zcollection-flight (issue 7): ``python -m benchmarks`` (see BENCHMARKS.md)."""

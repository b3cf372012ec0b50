"""Fake vendor APIs for end-to-end tests and benchmarks (see app.py)."""

"""Connectors: one module per tool, plus the framework they share (base, signatures, registry)."""

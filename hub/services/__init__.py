"""Use cases: plain functions that take what they need (engine, connectors, mappings, queue)."""

"""Adapters around the domain: storage (SQLAlchemy), queue (RQ), Redis, mapping files."""

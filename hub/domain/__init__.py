"""The domain core: canonical contact, mapping engine, identity and survivorship rules.

Pure Python: nothing here imports Flask, Redis, RQ, SQLAlchemy, requests or marshmallow, so the
rules that decide what a golden record looks like can be read and tested on their own.
"""

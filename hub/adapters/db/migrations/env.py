"""Alembic environment: the connection comes from hub.adapters.db.migrate, never from an ini."""

from alembic import context

from hub.adapters.db.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()

"""Alembic environment: sightd runs migrations programmatically (``sightd.store.database``), on the
connection it passes in ``config.attributes["connection"]``."""

from __future__ import annotations

from alembic import context

from sightd.store.schema import metadata

connection = context.config.attributes["connection"]
# Batch mode lets later migrations alter tables on SQLite (which rebuilds them).
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

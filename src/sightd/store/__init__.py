"""Storage of sightd: metadata and tasks in SQLite (embedded default, WAL) or PostgreSQL through
SQLAlchemy Core (async), one schema for both with Alembic migrations, and model files in a
content-addressed blob folder. Every repository function takes the caller's tenant and sees only that
tenant's rows and the public ones. docs/storage.md describes the schema.
"""

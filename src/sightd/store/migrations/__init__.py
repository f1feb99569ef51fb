"""Alembic migrations of sightd's schema, shipped in the package and run at start-up."""

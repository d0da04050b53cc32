"""Alembic revisions for SQLite and PostgreSQL (one history for both)."""

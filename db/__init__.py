"""Persistence: SQLModel tables, the async engine and sessions, and Alembic migrations."""

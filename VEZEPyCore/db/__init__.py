"""Async SQLAlchemy engines and Alembic migrations, the same way in every service."""

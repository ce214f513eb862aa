"""Migration scripts, one per schema revision; Alembic loads them by path."""

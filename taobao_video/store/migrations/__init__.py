"""Alembic migrations of the catalog, run in code by ``taobao_video.store.migrate.upgrade`` (no alembic.ini)."""

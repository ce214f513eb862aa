"""Alembic migrations of the catalog, run in code by ``taobao_video.store.catalog.upgrade`` (no alembic.ini)."""

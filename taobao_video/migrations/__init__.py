"""Alembic migrations of the catalog, run in code by ``taobao_video.catalog.upgrade`` (no alembic.ini)."""

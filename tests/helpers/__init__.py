"""Test helpers shared by every layer: servers, sandbox settings, catalogs, workers."""

"""taobao-video: a quota-aware, resumable harvester of Taobao product main-image videos."""

__version__ = "0.1.0"

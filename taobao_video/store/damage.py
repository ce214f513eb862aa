"""Which database errors mean the catalog's file is damaged. Standard library only: ``catalog sql`` asks too,
without loading SQLAlchemy."""

from __future__ import annotations

# SQLite's primary result codes that mean the file itself is bad, not the statement or a busy lock: SQLITE_IOERR,
# SQLITE_CORRUPT, SQLITE_NOTADB. Extended codes carry the primary one in their low byte.
_DAMAGE_CODES = frozenset({10, 11, 26})
_DAMAGE_WORDS = ("malformed", "not a database", "disk i/o error", "database corruption")


def damage_reason(exc: BaseException) -> str | None:
    """SQLite's words when ``exc`` (a driver error) says the database file is damaged, else None."""
    code = getattr(exc, "sqlite_errorcode", None)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(code, int) and code & 0xFF in _DAMAGE_CODES:
        return text
    if code is None and any(word in text.lower() for word in _DAMAGE_WORDS):
        return text
    return None

"""The catalog's storage: the one part of the package that imports SQLAlchemy and Alembic (tests/test_layout.py).

    catalog.py       Catalog, the repository: open/close, reads of items and videos, the call log
    queue.py         the queue (Catalog inherits it): enqueue, queue order and figures, remove
    items.py         the item state machine (Catalog inherits it): every transition, the claim rule
    claims.py        workers' claims on queued ids: take, renew, release (WorkClaims, LeaseKeeper)
    quota.py         the daily call quota ledger (QuotaLedger)
    filters.py       VideoQuery: the listing filters, parsed and checked (stdlib only)
    query.py         listings: a VideoQuery run against the catalog
    report.py        `catalog show` and `catalog stats`
    readonly_sql.py  `catalog sql`: the user's SQL on a connection the database keeps read-only
    records.py       the plain records callers get (VideoRow, ItemRow, EnqueueResult; stdlib only)
    schema.py        the SQLAlchemy models and indexes
    migrate.py       the schema version: the migrations in migrations/, applied
    dialects.py      what differs between SQLite and PostgreSQL
    common.py        argument checks, id batches, the retry on an insert race

Outside ``store/`` the catalog is its objects' methods and plain records: no engine, no models, no SQL.
"""

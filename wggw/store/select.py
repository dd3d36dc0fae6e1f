"""Which store a command works on: PostgreSQL when a URL is given (--db or WGGW_DB), else
SQLite under the state dir; secrets sealed with WGGW_KEY_FILE's key when it is set."""

from __future__ import annotations

import os
from pathlib import Path

from wggw.core.errors import ValidationError
from wggw.store import sealed, sqlite
from wggw.store.sqlite import Store

DB_ENV = "WGGW_DB"


def db_url(db: str | None = None) -> str | None:
    """The PostgreSQL URL in force, checked; None for the SQLite store."""
    url = db or os.environ.get(DB_ENV) or None
    if url is not None and not url.startswith(("postgresql://", "postgres://")):
        raise ValidationError("db", f"{url.split(':', 1)[0]!r} is not a postgresql:// URL")
    return url


def open_store(state_dir: Path, create: bool = False, db: str | None = None) -> Store:
    """The store of this command; with `create` (`wggw init`), made first."""
    url = db_url(db)
    cipher = sealed.cipher_from_env(create=create)
    if url is None:
        return sqlite.open_store(state_dir, create=create, cipher=cipher)
    from wggw.store.postgres import PgStore  # psycopg is imported only for this store

    return PgStore(url, state_dir, create=create, cipher=cipher)


def init(state_dir: Path, db: str | None = None) -> tuple[bool, str]:
    """Create the store; (created, where) - created False if it already existed."""
    url = db_url(db)
    if url is None:
        existed = sqlite.store_exists(state_dir)
        open_store(state_dir, create=True).close()
        return not existed, str(state_dir)
    from wggw.store import pgsql

    conn = pgsql.connect(url)
    try:
        with pgsql.pg_errors(pgsql.describe(url)):
            row = conn.execute("SELECT to_regclass('schema_version') AS t").fetchone()
    finally:
        conn.close()
    open_store(state_dir, create=True, db=url).close()
    return row is None or row["t"] is None, pgsql.describe(url)

"""The store a command works on, opened for the CLI (which imports no store module itself),
and private output files (0600 via temp file + rename)."""

from __future__ import annotations

from pathlib import Path

from wggw.core.errors import ValidationError
from wggw.store import select
from wggw.store.select import open_store
from wggw.store.sqlite import Store


def open_existing(state_dir: Path, db: str | None = None) -> Store:
    """The existing store (StoreMissingError, exit 2, 'run wggw init' when there is none):
    PostgreSQL at `db` (or WGGW_DB), else SQLite in `state_dir`."""
    return open_store(state_dir, db=db)


def init_store(state_dir: Path, db: str | None = None) -> tuple[bool, str]:
    """`wggw init`: (created, where); created False when the store existed (nothing changed)."""
    return select.init(state_dir, db)


def refuse_password_in_argv(url: str | None, option: str) -> None:
    """A database URL given on the command line must not carry a password: `ps` and shell
    history show the command line to others. libpq reads ~/.pgpass and PGPASSWORD instead."""
    from urllib.parse import parse_qs, urlsplit

    if not url:
        return
    try:
        parts = urlsplit(url)
        has = parts.password is not None or "password" in parse_qs(parts.query)
    except ValueError:
        return  # the store reports the unparsable URL
    if has:
        raise ValidationError(
            option,
            "the URL holds a password, which the command line shows to other users; put it "
            "in ~/.pgpass or PGPASSWORD, or give the URL in WGGW_DB",
        )


def write_private(path: Path, data: str | bytes, field: str = "output") -> None:
    """Write a file 0600 via temp + rename; an unwritable path is a usage error (exit 2)."""
    from wggw.fsutil import atomic_write

    try:
        atomic_write(path, data)
    except OSError as e:
        raise ValidationError(field, f"cannot write {path}: {e.strerror}") from None

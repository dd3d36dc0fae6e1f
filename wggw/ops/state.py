"""The store a command works on, opened for the CLI (which imports no store module itself),
and private output files (0600 via temp file + rename)."""

from __future__ import annotations

from pathlib import Path

from wggw.core.errors import ValidationError
from wggw.store.sqlite import Store, open_store


def open_existing(state_dir: Path) -> Store:
    """The existing store (StoreMissingError, exit 2, 'run wggw init' when there is none)."""
    return open_store(state_dir)


def write_private(path: Path, data: str | bytes, field: str = "output") -> None:
    """Write a file 0600 via temp + rename; an unwritable path is a usage error (exit 2)."""
    from wggw.fsutil import atomic_write

    try:
        atomic_write(path, data)
    except OSError as e:
        raise ValidationError(field, f"cannot write {path}: {e.strerror}") from None

"""Private files: atomic 0600 writes and 0700 directories, created so (never chmod-ed after)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Files and directories created inside get no group/other bits from the start."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def atomic_write(path: str | Path, data: str | bytes, mode: int = 0o600) -> None:
    """Write `data` to `path` via a temp file in the same directory plus rename.

    Readers see the old file or the new one, never half of it; the temp file is
    created with `mode` (mkstemp gives 0600), so a secret is never world-readable.
    """
    path = Path(path)
    raw = data.encode() if isinstance(data, str) else data
    import tempfile  # not at import: a one-peer command that writes no file skips it

    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        if mode != 0o600:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def unlink_with_temps(path: str | Path) -> None:
    """Remove `path` and any temp file `atomic_write` left beside it (a process killed
    between writing the temp file and renaming it), so that removing a record leaves
    nothing of it behind."""
    path = Path(path)
    path.unlink(missing_ok=True)
    for tmp in path.parent.glob(f".{path.name}.*.tmp") if path.parent.is_dir() else ():
        tmp.unlink(missing_ok=True)


def is_private_dir(path: Path) -> bool:
    """True when no one but the owner can enter or list `path`."""
    return (path.stat().st_mode & 0o077) == 0


def make_private_dir(path: Path) -> bool:
    """Create `path` (and missing parents' last component) 0700; False if it existed."""
    with private_umask():
        try:
            os.makedirs(path, mode=0o700)
        except FileExistsError:
            return False
    return True

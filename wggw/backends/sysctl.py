"""Forwarding sysctls: set them for apply, and give back on `down` what wggw changed.

When wggw first changes a sysctl it records the value it found, in the runtime
directory (not the store, so `down` works without the store), keyed by the network
namespace. `down` restores that value, but only if the setting still holds what wggw
set: an operator's later change wins.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from wggw.backends import runfiles
from wggw.core.errors import BackendError
from wggw.fsutil import atomic_write, make_private_dir, unlink_with_temps

PROC_SYS = Path("/proc/sys")


def _record_path() -> Path:
    return runfiles.sysctl_record(runfiles.netns_inode())  # one record per network namespace


def _load() -> dict:
    try:
        return json.loads(_record_path().read_text())
    except (OSError, ValueError):
        return {}


def read(keys: Iterable[str]) -> dict[str, str]:
    out = {}
    for key in keys:
        try:
            out[key] = (PROC_SYS / key).read_text().strip()
        except OSError:
            pass
    return out


def _write_raw(key: str, value: str) -> None:
    try:
        (PROC_SYS / key).write_text(value)
    except OSError as exc:
        raise BackendError(f"sysctl {key.replace('/', '.')}: {exc.strerror}") from None


def write(key: str, value: str) -> None:
    record = _load()
    before = read([key]).get(key)
    if key not in record and before is not None and before != value:
        record[key] = {"before": before, "set": value}
        make_private_dir(runfiles.runtime_dir())
        atomic_write(_record_path(), json.dumps(record))
    _write_raw(key, value)


def restore() -> list[tuple[str, str]]:
    """Put back what wggw changed (if still as wggw left it); returns (key, value) restored."""
    record = _load()
    done = []
    for key, entry in record.items():
        if read([key]).get(key) == entry["set"]:
            _write_raw(key, entry["before"])
            done.append((key, entry["before"]))
    unlink_with_temps(_record_path())
    return done

"""Where the remembered peer endpoints (core/endpoints.py) live: one JSON file per
WireGuard device in the runtime directory, <ifname>.endpoints.json, 0600.

Why the runtime directory and not the store: endpoints are observations, not the operator's
intent; they change whenever a client roams; `status` (which takes no lock) records them
too; and they must outlive only the WireGuard process, not the host (after a reboot the
clients' NAT mappings are gone anyway). A file is rewritten only when its content changes,
so an `apply` with no roaming client writes nothing.
"""

from __future__ import annotations

import json
import os

from wggw.backends import runfiles
from wggw.core.endpoints import Memory


def load(names) -> dict[str, dict[str, str]]:
    """The remembered endpoints of the devices `names` (a device without a file: none)."""
    out: dict[str, dict[str, str]] = {}
    for name in names:
        try:
            data = json.loads(runfiles.endpoints_file(name).read_text())
        except (OSError, ValueError):
            continue  # none yet, or unreadable: a memory, never a reason to fail
        if isinstance(data, dict):
            out[name] = {str(k): str(v) for k, v in data.items()}
    return out


def save(old: Memory, new: Memory) -> None:
    """Write the files whose content differs from `old`; remove those of devices no longer
    in `new` but in `old`."""
    for name in set(old) | set(new):
        mine = dict(new.get(name, {}))
        if mine == dict(old.get(name, {})):
            continue
        path = runfiles.endpoints_file(name)
        if not mine:
            path.unlink(missing_ok=True)
            continue
        _write(path, json.dumps(mine, sort_keys=True, indent=0))


def forget(name: str) -> None:
    runfiles.endpoints_file(name).unlink(missing_ok=True)


def _write(path, text: str) -> None:
    try:
        os.makedirs(path.parent, mode=0o700, exist_ok=True)
        tmp = runfiles.tmp_of(path)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError:
        pass  # e.g. a read-only runtime dir for a non-root `status`: only the memory is lost

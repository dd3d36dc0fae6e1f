"""Which gateway of a fleet this host is, remembered in its runtime directory, so that an
`apply` or an agent started under another name (or none) refuses instead of tearing down
the part this host runs: on a fleet's store, `wggw apply` without `--gateway` means "what is
placed on no gateway", and converging that on gateway gw1's host would remove gw1's part.
`down` forgets the role (the host then runs nothing of wggw's)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from wggw import fsutil
from wggw.backends.runfiles import runtime_dir
from wggw.core.errors import ValidationError
from wggw.core.model import State


def _path() -> Path:
    return runtime_dir() / "gateway"


def _label(role: str) -> str:
    return f"gateway {role!r}" if role else "the part placed on no gateway"


def check(state: State, gateway: str | None) -> None:
    """Refuse (exit 2) when this host last ran another role than `gateway` (None: the
    implicit local gateway). A host that never recorded a role may take any."""
    try:
        recorded = _path().read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return
    if recorded == (gateway or "") or not (state.gateways or recorded):
        return
    hint = f"--gateway {recorded}" if recorded else "no --gateway"
    raise ValidationError(
        "gateway",
        f"this host runs {_label(recorded)} (recorded in {_path()} by its last apply or "
        f"agent), not {_label(gateway or '')}: run with {hint}, or `wggw down` first",
    )


def remember(state: State, gateway: str | None) -> None:
    """Record the role after an apply or at an agent's start (only where the store has
    gateways or a gateway was named: a single-host store needs none)."""
    if gateway is None and not state.gateways:
        return
    path = _path()
    if path.parent.is_dir():
        fsutil.atomic_write(path, (gateway or "") + "\n", mode=0o644)


def forget() -> None:
    with contextlib.suppress(FileNotFoundError):
        _path().unlink()

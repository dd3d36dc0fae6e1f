"""Who is changing the store, for the audit records: the uid, the person's name (SUDO_USER
when run through sudo, else the login name) and the command, which the CLI names once per
run (`wggw peer add`) and the agent names as itself."""

from __future__ import annotations

import functools
import os
import pwd

_command: str | None = None


def set_command(command: str | None) -> None:
    global _command
    _command = command


def command() -> str | None:
    return _command


def who() -> tuple[int, str | None]:
    uid = os.getuid()
    env = os.environ
    return uid, _name(uid, env.get("SUDO_USER") or env.get("LOGNAME") or env.get("USER"))


@functools.lru_cache(maxsize=8)
def _name(uid: int, given: str | None) -> str | None:
    """Cached: a bulk add writes 10,000 records, and a passwd lookup costs ~50 us."""
    if given:
        return given
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid without a passwd entry (containers)
        return None

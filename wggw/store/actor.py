"""Who is changing the store, for the audit records: the uid, the person's name (SUDO_USER
when run through sudo, else the login name) and the command, which the CLI names once per
run (`wggw peer add`) and the agent names as itself."""

from __future__ import annotations

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
    name = os.environ.get("SUDO_USER") or os.environ.get("LOGNAME") or os.environ.get("USER")
    if not name:
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:  # a uid without a passwd entry (containers)
            name = None
    return uid, name

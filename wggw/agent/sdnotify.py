"""systemd's notify protocol (sd_notify(3)): READY=1, WATCHDOG=1, STATUS=... as datagrams to
$NOTIFY_SOCKET. Without that variable (not started by systemd) every call does nothing."""

from __future__ import annotations

import os
import socket


def notify(message: str) -> bool:
    """Send one message; True if it was sent. Errors are swallowed: systemd is optional."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message.encode(), address)
        return True
    except OSError:
        return False


def watchdog_interval() -> float | None:
    """Half of WatchdogSec (systemd's advice), or None if no watchdog was asked for."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or not usec.isdigit() or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6

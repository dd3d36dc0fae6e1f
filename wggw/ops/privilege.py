"""Whether this process may change the host's network: wggw's kernel commands need
CAP_NET_ADMIN (in practice: root), and say so before they try anything."""

from __future__ import annotations

from pathlib import Path

from wggw.core.errors import PrivilegeError

CAP_NET_ADMIN = 12  # linux/capability.h


def effective_caps(status: str | None = None) -> int:
    """The CapEff mask from /proc/self/status (or the given text); 0 if it cannot be read."""
    if status is None:
        try:
            status = Path("/proc/self/status").read_text()
        except OSError:
            return 0
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def require_net_admin(command: str = "this command") -> None:
    """Raise PrivilegeError (exit 77) unless this process holds CAP_NET_ADMIN."""
    if not effective_caps() >> CAP_NET_ADMIN & 1:
        raise PrivilegeError(
            f"{command} needs root (CAP_NET_ADMIN) to read and change the "
            "host's network; run it as root, e.g. with sudo"
        )

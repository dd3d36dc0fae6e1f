"""What high availability reads of the host (issue 14): each device's addresses with their
prefixes (where an endpoint address belongs), whether uplinks can carry traffic, and the
keepalived process behind a pid file (alive? reload it)."""

from __future__ import annotations

import ipaddress
import os
import signal
from collections.abc import Iterable
from pathlib import Path

from wggw.backends.netlink import dump as nldump
from wggw.core.model import IPInterface

IFF_UP, IFF_LOWER_UP = 0x1, 0x10000


def connected() -> dict[str, list[IPInterface]]:
    """Device name -> its addresses with prefix (link-local ones left out)."""
    names = dict(nldump.iter_names())
    out: dict[str, list[IPInterface]] = {}
    for a in nldump.addresses():
        text = a.get("IFA_LOCAL") or a.get("IFA_ADDRESS")
        if not text or a["index"] not in names:
            continue
        addr = ipaddress.ip_interface(f"{ipaddress.ip_address(text)}/{a['prefixlen']}")
        if not addr.ip.is_link_local:
            out.setdefault(names[a["index"]], []).append(addr)
    return out


def links_down(devs: Iterable[str]) -> list[str]:
    """Those of `devs` that cannot carry traffic: missing, administratively down, or without
    carrier."""
    want = set(devs)
    up = {
        link.get("IFLA_IFNAME")
        for link in nldump.links()
        if link.get("IFLA_IFNAME") in want
        and link["flags"] & IFF_UP
        and link["flags"] & IFF_LOWER_UP
    }
    return sorted(want - up)


def running_pid(pidfile: Path) -> int | None:
    """The pid in `pidfile` if that process lives, else None."""
    try:
        pid = int(pidfile.read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid


def reload(pidfile: Path) -> int | None:
    """SIGHUP keepalived (it re-reads its configuration); the pid, or None if none runs."""
    pid = running_pid(pidfile)
    if pid is not None:
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            return None
    return pid

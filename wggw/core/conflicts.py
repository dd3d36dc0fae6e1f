"""Egress IPs that would break the host (issue 9, defect 6), found from host facts (pure).

An egress IP is added to the uplink. If it is the uplink's next hop, the host takes over its
own router's address; if it is already on the host and wggw did not add it, it is the host's
own (or another program's) address, and tenant traffic would leave as the host. Both are
refused before anything is changed: at `plan`/`apply`/`status` (where the host facts are
known) and, where the host can be read, at `tenant add`.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from wggw.core.errors import HostConflictError
from wggw.core.hostfacts import HostFacts
from wggw.core.model import Tenant


def _same(a: str | None, b: object) -> bool:
    if a is None:
        return False
    try:
        ip = b if isinstance(b, ipaddress.IPv4Address | ipaddress.IPv6Address) else _ip(str(b))
        return bool(_ip(a) == ip)
    except ValueError:
        return False


@functools.lru_cache(maxsize=64)
def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The next hop is the same string for every tenant: parse it once (the check runs
    for 1,000 tenants at each plan, apply and verify)."""
    return ipaddress.ip_address(text)


def egress_conflict(t: Tenant, facts: HostFacts, floating: bool = False) -> str | None:
    """What is wrong with the tenant's egress IPs on this host, or None. A floating tenant's
    egress (core/ha.py) is keepalived's to hold: found on the host, it is no conflict."""
    for ip in t.egress:
        main = facts.default_routes.get(ip.version)
        dev = t.uplink or (main.dev if main else None)
        via = t.via_ip(ip.version)
        hop = str(via) if via else (main.gateway if main and main.dev == dev else None)
        if _same(hop, ip):
            return f"egress {ip} is the IPv{ip.version} next hop of uplink {dev}"
        if not floating and str(ip) in facts.foreign_addresses:
            where = facts.foreign_devs.get(str(ip))
            on = f" (on {where})" if where else ""
            return f"egress {ip} is already an address of this host{on}, not added by wggw"
    return None


def check(
    tenants: Iterable[Tenant], facts: HostFacts, floating: frozenset[str] = frozenset()
) -> None:
    """Raise HostConflictError for the first tenant whose egress conflicts with the host
    (`floating`: the egress IPs keepalived holds, core/ha.floating_egress)."""
    for t in tenants:
        problem = egress_conflict(t, facts, any(str(ip) in floating for ip in t.egress))
        if problem:
            raise HostConflictError(f"tenant {t.name}", problem)

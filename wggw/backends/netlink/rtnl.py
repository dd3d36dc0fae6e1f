"""Routing backend: links, addresses, routes and ip rules via netlink (our own dump
decoder and batch encoder, no pyroute2). Observes only what naming says wggw owns; applies
changes with an explicit errno policy (EEXIST on add = present; ENOENT/ESRCH/EADDRNOTAVAIL
on delete = gone) so a re-run after a partial failure converges.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Iterable

from wggw.backends.netlink import dump as nldump
from wggw.backends.netlink.extra import addr_extra, route_extra, rule_extra
from wggw.core import naming
from wggw.core.desired import AddrSpec, LinkSpec, RouteSpec
from wggw.core.errors import BackendError
from wggw.core.hostfacts import DefaultRoute, HostFacts
from wggw.core.plan import ObservedLink
from wggw.core.ruletree import RuleSpec

AF = {4: socket.AF_INET, 6: socket.AF_INET6}
FAMILY = {socket.AF_INET: 4, socket.AF_INET6: 6}
ACTIONS = {1: "lookup", 2: "goto", 3: "nop", 6: "blackhole", 7: "unreachable", 8: "prohibit"}
ACTION_CODES = {
    "lookup": "FR_ACT_TO_TBL",
    "goto": "FR_ACT_GOTO",
    "nop": "FR_ACT_NOP",
    "unreachable": "FR_ACT_UNREACHABLE",
}
IFF_UP = 0x1
IP6_RT_PRIO_USER = 1024
MAIN_TABLE = 254
IFA_F_NODAD = 0x02
GONE = {errno.ENOENT, errno.ESRCH, errno.EADDRNOTAVAIL, errno.ENODEV}


# ---- observation --------------------------------------------------------------


def _names() -> dict[int, str]:
    return dict(nldump.iter_names())


def observe_facts() -> HostFacts:
    """Main's default routes, addresses wggw did not add, and link names."""
    names = _names()
    defaults: dict[int, DefaultRoute] = {}
    for v in (4, 6):
        best = None
        for r in nldump.routes(AF[v], MAIN_TABLE):  # not the 6,000 of 1,000 tenants' tables
            if r["dst_len"] != 0 or r.get("RTA_TABLE", r["table"]) != MAIN_TABLE or r["type"] != 1:
                continue
            metric = r.get("RTA_PRIORITY") or 0
            if r.get("RTA_OIF") in names and (best is None or metric < best[0]):
                best = (metric, DefaultRoute(names[r["RTA_OIF"]], r.get("RTA_GATEWAY")))
        if best:
            defaults[v] = best[1]
    foreign = {
        str(ipaddress.ip_address(a.get("IFA_ADDRESS", ""))): names.get(a["index"], "")
        for a in nldump.addresses()
        if a.get("IFA_PROTO") != naming.ADDR_PROTO
    }
    return HostFacts(
        defaults,
        frozenset(foreign),
        frozenset(n for n in names.values() if n),
        foreign_devs=foreign,
    )


def observe_links(owned: Iterable[str]) -> dict[str, ObservedLink]:
    owned = set(owned)
    return {
        link["IFLA_IFNAME"]: ObservedLink(
            link["IFLA_IFNAME"], link["IFLA_MTU"], bool(link["flags"] & IFF_UP)
        )
        for link in nldump.links()
        if link.get("IFLA_IFNAME") in owned
    }


def observe_addresses(owned_links: Iterable[str]) -> frozenset[AddrSpec]:
    """Every address on wggw's links, and egress addresses wggw added anywhere."""
    owned_links = set(owned_links)
    out = set()
    names = _names()
    for a in nldump.addresses():
        ifname = names.get(a["index"], "")
        if a.get("IFA_PROTO") != naming.ADDR_PROTO and ifname not in owned_links:
            continue  # not ours: skip before the (comparatively slow) address parsing
        ip = ipaddress.ip_address(a.get("IFA_LOCAL") or a.get("IFA_ADDRESS", ""))
        if ip.is_link_local:
            continue  # the kernel's own fe80:: addresses
        cidr = f"{ip}/{a['prefixlen']}"
        extra = addr_extra(a, ifname)
        out.add(AddrSpec(ifname, cidr, a.get("IFA_PROTO") == naming.ADDR_PROTO, extra))
    return frozenset(out)


def _route_spec(r, names: dict[int, str]) -> RouteSpec | None:
    """Every route in wggw's tables, whatever its type, with all it carries."""
    table = r.get("RTA_TABLE", r["table"])
    if not naming.owns_table(table):
        return None
    v = FAMILY[r["family"]]
    dst = (
        "default"
        if r["dst_len"] == 0
        else str(ipaddress.ip_network(f"{r.get('RTA_DST')}/{r['dst_len']}"))
    )
    metric = r.get("RTA_PRIORITY") or 0
    if v == 6 and metric == IP6_RT_PRIO_USER:
        metric = 0  # what the kernel makes of "no metric"
    dev = names.get(r.get("RTA_OIF"), "?") if r.get("RTA_OIF") else ""
    return RouteSpec(
        v, table, dst, dev, r.get("RTA_GATEWAY"), r.get("RTA_PREFSRC"), metric, route_extra(r)
    )


def observe_routes(table: int = 0) -> frozenset[RouteSpec]:
    """wggw's routes, of every table or of `table` only."""
    out = set()
    names = _names()
    for v in (4, 6):
        for r in nldump.routes(AF[v], table):  # ours are filtered below
            spec = _route_spec(r, names)
            if spec:
                out.add(spec)
    return frozenset(out)


def observe_rules() -> frozenset[RuleSpec]:
    out = set()
    for v in (4, 6):
        for r in nldump.rules(AF[v]):
            pref = r.get("FRA_PRIORITY") or 0
            if not naming.owns_rule_pref(pref):
                continue
            action = ACTIONS.get(r["action"], f"action-{r['action']}")
            table = (r.get("FRA_TABLE") or r["table"]) if action == "lookup" else 0
            out.add(
                RuleSpec(
                    v,
                    pref,
                    action,
                    r.get("FRA_FWMARK") or 0,
                    r.get("FRA_FWMASK") or 0,
                    table,
                    r.get("FRA_GOTO") or 0,
                    r.get("FRA_IIFNAME") or "",
                    rule_extra(r, action),
                )
            )
    return frozenset(out)


# ---- changes ------------------------------------------------------------------


class Netlink:
    """One netlink socket for a batch of changes (use as a context manager)."""

    def __enter__(self) -> Netlink:
        self.index = {n: i for i, n in _names().items()}
        return self

    def __exit__(self, *exc) -> None:
        pass

    def _idx(self, ifname: str, what: str) -> int:
        if ifname not in self.index:
            self.index = {n: i for i, n in _names().items()}
        if ifname not in self.index:
            raise BackendError(f"{what}: no such interface {ifname}")
        return self.index[ifname]

    def set_link(self, spec: LinkSpec) -> None:
        """MTU and up, through the batch encoder (pyroute2's import alone costs ~0.1 s)."""
        from wggw.backends.netlink import batch as nlbatch

        what = f"link {spec.name}"
        failures = nlbatch.send([nlbatch.link(self._idx(spec.name, what), what, spec.mtu, True)])
        if failures:
            raise BackendError(nlbatch.describe(failures[0]))

    def batch(self, items: list[tuple[str, object]]) -> None:
        """Apply many (cmd, AddrSpec|RouteSpec|RuleSpec) in order, in a few large netlink
        writes (nlbatch), with wggw's errno policy (EEXIST on add, gone on delete: done)."""
        from wggw.backends.netlink import batch as nlbatch

        requests = [self._request(cmd, spec) for cmd, spec in items]
        failures = nlbatch.send(requests)
        if failures:
            more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
            raise BackendError(nlbatch.describe(failures[0]) + more)

    def _request(self, cmd: str, spec):
        from wggw.backends.netlink import batch as nlbatch

        if isinstance(spec, AddrSpec):
            return nlbatch.address(
                cmd,
                self._idx(spec.ifname, f"address {spec.cidr}"),
                spec.cidr,
                naming.ADDR_PROTO if spec.egress else 0,
                nodad=":" in spec.cidr,  # IPv6
            )
        if isinstance(spec, RouteSpec):
            if cmd == "del":  # name this very route: another may share its destination
                return nlbatch.route(
                    cmd,
                    spec.family,
                    spec.table,
                    spec.dst,
                    self.index.get(spec.dev, 0),
                    spec.gateway,
                    None,
                    spec.metric,
                )
            oif = self._idx(spec.dev, f"route {spec.dst} table {spec.table}")
            return nlbatch.route(
                cmd, spec.family, spec.table, spec.dst, oif, spec.gateway, spec.src, spec.metric
            )
        return nlbatch.rule(
            cmd,
            spec.family,
            spec.pref,
            spec.action,
            spec.fwmark,
            spec.fwmask,
            spec.table,
            spec.goto,
            spec.iif,
            spec.extra,
        )

"""Does each tenant's traffic take its own path? (issue 9, defect 3; pure)

wggw never touches rules it does not own, but a foreign ip rule at a priority above wggw's
window (`ip rule add pref 100 lookup main`) takes tenant packets past their tables unseen by
`plan`. So `status` asks the kernel how a tenant packet is routed, as `ip route get fibmatch`
does, with what identifies a tenant packet on the way in: the WireGuard interface (iif), the
tenant mark, a pool address as source and a destination on the internet side. Here: what to
ask (`probes`), what the answer should be (the tenant's default route in its own table), and,
when it is wrong, which foreign rule explains it (`culprit`), from an ip rule dump.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from wggw.core import naming
from wggw.core.desired import Desired, RouteSpec
from wggw.core.model import IPNetwork, State

# Where a probe packet goes: addresses on the internet side, reached by the default route.
# A lookup sends nothing; documentation ranges keep even a mistake harmless.
PROBE_DST = {4: "203.0.113.200", 6: "2001:db8:ffff::c8"}
TABLE_NAMES = {253: "default", 254: "main", 255: "local"}


@dataclass(frozen=True)
class Probe:
    tenant: str
    family: int
    iif: str  # the tenant's WireGuard interface
    mark: int  # the tenant mark
    src: str  # a pool address
    dst: str
    expect: RouteSpec | None  # the tenant's default route; None: must be unreachable

    def describe(self) -> str:
        fam = "-6 " if self.family == 6 else ""
        return (
            f"ip {fam}route get fibmatch {self.dst} from {self.src} iif {self.iif} "
            f"mark {self.mark:#x}"
        )


@dataclass(frozen=True)
class Answer:
    """The kernel's route for a probe, or the error it gave (e.g. unreachable)."""

    table: int | None = None
    dev: str | None = None
    src: str | None = None  # the route's preferred source
    gateway: str | None = None
    error: str | None = None

    def describe(self) -> str:
        if self.error:
            return f"no route ({self.error})"
        table = self.table if self.table is None else TABLE_NAMES.get(self.table, self.table)
        parts = [f"table {table}"]
        parts += [f"via {self.gateway}"] if self.gateway else []
        parts += [f"dev {self.dev}"] if self.dev else []
        parts += [f"src {self.src}"] if self.src else []
        return " ".join(parts)


@dataclass(frozen=True)
class ForeignRule:
    """An ip rule wggw does not own, as far as a route lookup's match goes."""

    pref: int
    action: str  # lookup, goto, nop, blackhole, unreachable, prohibit
    table: int = 0
    iif: str | None = None
    oif: str | None = None
    mark: int = 0
    mask: int = 0
    src: str | None = None  # CIDR
    dst: str | None = None
    tos: int = 0
    ipproto: int = 0
    ports: bool = False  # has a source or destination port range
    uid_range: tuple[int, int] | None = None
    invert: bool = False
    l3mdev: bool = False
    text: str = ""  # how `ip rule` would show it, for the report

    def matches(self, p: Probe) -> bool:
        """Would this rule's selector match the probe (a forwarded packet: no oif, uid 0,
        no protocol or ports, tos 0)? As fib_rule_match / fib4_rule_match / fib6_rule_match."""
        uid_ok = self.uid_range is None or self.uid_range[0] <= 0 <= self.uid_range[1]
        hit = (
            (not self.iif or self.iif == p.iif)
            and not self.oif
            and not self.l3mdev
            and not (self.mark ^ p.mark) & self.mask
            and not self.tos
            and not self.ipproto
            and not self.ports
            and uid_ok
            and _within(p.src, self.src)
            and _within(p.dst, self.dst)
        )
        return hit != self.invert

    def explains(self, got: Answer) -> bool:
        if got.error:
            return self.action in ("blackhole", "unreachable", "prohibit")
        return self.action == "goto" or (self.action == "lookup" and self.table == got.table)


def _within(addr: str, cidr: str | None) -> bool:
    return cidr is None or ipaddress.ip_address(addr) in ipaddress.ip_network(cidr, strict=False)


def _probe_src(pool: IPNetwork) -> str:
    """The first peer address of the pool (the gateway has the first host)."""
    n = 2 if pool.num_addresses > 2 else 0
    return str(pool.network_address + n)


def probes(state: State, desired: Desired) -> list[Probe]:
    """One probe per tenant and family of its pools."""
    defaults = {(r.family, r.table): r for r in desired.routes if r.dst == "default"}
    out = []
    for t in state.tenants:
        for pool in t.pools:
            v = pool.version
            out.append(
                Probe(
                    t.name,
                    v,
                    t.interface,
                    naming.tenant_mark(t.table),
                    _probe_src(pool),
                    PROBE_DST[v],
                    defaults.get((v, t.table)),
                )
            )
    return out


def right(p: Probe, got: Answer) -> bool:
    """The tenant's own table, device and egress source; or, without an egress in this
    family, no route at all (the family fails closed)."""
    want = p.expect
    if want is None:
        return got.error is not None
    return (
        got.error is None
        and got.table == want.table
        and got.dev == want.dev
        and _same(got.src, want.src)
    )


def _same(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a == b
    return ipaddress.ip_address(a) == ipaddress.ip_address(b)


def culprit(p: Probe, got: Answer, rules: list[ForeignRule]) -> ForeignRule | None:
    """The first foreign rule above wggw's window that matches the probe and explains the
    answer (None if there is none: then wggw's own rules or tables are not as planned)."""
    for rule in sorted(rules, key=lambda r: r.pref):
        if rule.pref < naming.RULE_PREF_MIN and rule.matches(p) and rule.explains(got):
            return rule
    return None


def expected_text(p: Probe) -> str:
    if p.expect is None:
        return "no route (no egress in this family)"
    e = p.expect
    return Answer(e.table, e.dev, e.src, e.gateway).describe()


def judge(p: Probe, got: Answer, rules: list[ForeignRule]) -> dict[str, Any]:
    """One entry of `status`'s `paths` list (a JSON contract: README)."""
    ok = right(p, got)
    rule = None if ok else culprit(p, got, rules)
    return {
        "tenant": p.tenant,
        "family": p.family,
        "ok": ok,
        "query": p.describe(),
        "expected": expected_text(p),
        "got": got.describe(),
        "table": got.table,
        "dev": got.dev,
        "src": got.src,
        "error": got.error,
        "rule": rule.text if rule else None,
    }

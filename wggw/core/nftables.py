"""Render wggw's one nftables table (pure): marks, source NAT, isolation, fail-closed guard.

Every per-tenant fact lives in a set or map, so the number of rules is constant and
per-packet cost does not grow with the number of tenants (one hash/interval lookup).
The table is replaced whole in one `nft -f` transaction; the first rule's comment carries
a digest of the rendered table. `elements` lists every set and map element in one canonical
spelling, which observation compares in full with what the kernel holds (so an element edited
in place, deleted or added behind wggw's back is a difference); the chains and rules are
compared with what the kernel reported when wggw loaded this very text (backends/nft.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from wggw.core import ha, naming
from wggw.core.model import State, Tenant

TABLE = f"{naming.NFT_FAMILY} {naming.NFT_TABLE}"

# Chain hooks. The guard runs after every NAT hook anyone could register at a
# normal priority, so it sees the source the packet will really leave with.
CHAINS = {
    "tenant_mark": "type filter hook prerouting priority mangle; policy accept;",
    "tenant_isolation": "type filter hook forward priority filter; policy accept;",
    "egress_snat": "type nat hook postrouting priority srcnat; policy accept;",
    "egress_guard": "type filter hook postrouting priority 500; policy accept;",
}


CLEAR_FROM_WG = 0xFFFFFFFF & ~naming.MARK_FROM_WG


@dataclass(frozen=True)
class NftSpec:
    text: str  # the full transaction: create/delete/define the table
    digest: str  # sha256 of the rendered table, stored as the first rule's comment
    elements: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (set name, sorted canonical elements)


def _elements(items: list[str]) -> str:
    return "elements = { " + ", ".join(items) + " }" if items else ""


def _set(name: str, type_: str, items: list[str], interval: bool = True) -> str:
    flags = "flags interval; " if interval else ""
    return f"\tset {name} {{ type {type_}; {flags}{_elements(items)} }}"


def _map(name: str, type_: str, items: list[str]) -> str:
    return f"\tmap {name} {{ type {type_}; flags interval; {_elements(items)} }}"


def _family_data(tenants: list[Tenant], v: int) -> dict[str, list[str]]:
    data: dict[str, list[str]] = {
        "pools": [],
        "mark": [],
        "snat": [],
        "same": [],
        "ok": [],
        "mark_ok": [],
    }
    for t in tenants:
        pool = t.pool(v)
        if pool is None:
            continue
        data["pools"].append(str(pool))
        # FROM_WG rides on the tenant mark too, so nft alone also sets what the tc guard tests.
        data["mark"].append(f"{pool} : {naming.tenant_mark(t.table) | naming.MARK_FROM_WG:#x}")
        data["same"].append(f"{pool} . {pool}")
        egress = t.egress_ip(v)
        if egress is not None:
            data["snat"].append(f"{pool} : {egress}")
            data["ok"].append(f"{pool} . {egress}")
            # The same pairing keyed on the tenant's mark, from a second source of truth: an
            # in-place edit of snat_v* and egress_ok_v* together cannot re-attribute a tenant.
            data["mark_ok"].append(f"{naming.tenant_mark(t.table):#x} . {egress}")
    return data


def _declarations(
    ifaces: list[str], fams: dict[int, dict[str, list[str]]]
) -> tuple[list[str], dict[str, tuple[str, ...]]]:
    lines = [_set("wg_ifaces", "ifname", [f'"{i}"' for i in ifaces], interval=False)]
    elements = {"wg_ifaces": tuple(sorted(ifaces))}
    for v, d in fams.items():
        a = "ipv4_addr" if v == 4 else "ipv6_addr"
        decl = [
            ("pools", _set(f"pools_v{v}", a, d["pools"]), d["pools"]),
            ("mark", _map(f"mark_v{v}", f"{a} : mark", d["mark"]), d["mark"]),
            ("snat", _map(f"snat_v{v}", f"{a} : {a}", d["snat"]), d["snat"]),
            ("same", _set(f"same_tenant_v{v}", f"{a} . {a}", d["same"]), d["same"]),
            ("ok", _set(f"egress_ok_v{v}", f"{a} . {a}", d["ok"]), d["ok"]),
            (
                "mark_ok",
                _set(f"egress_mark_v{v}", f"mark . {a}", d["mark_ok"], interval=False),
                d["mark_ok"],
            ),
        ]
        for key, text, items in decl:
            lines.append(text)
            name = {
                "pools": "pools",
                "mark": "mark",
                "snat": "snat",
                "same": "same_tenant",
                "ok": "egress_ok",
                "mark_ok": "egress_mark",
            }[key]
            elements[f"{name}_v{v}"] = tuple(sorted(items))
    return lines, elements


def _rules(digest: str) -> dict[str, list[str]]:
    r: dict[str, list[str]] = {name: [] for name in CHAINS}
    # The digest rides on the first rule: nft's JSON shows rule comments, not table ones.
    r["tenant_mark"].append(f'iifname != @wg_ifaces return comment "wggw {digest}"')
    r["egress_snat"].append("oifname @wg_ifaces return")
    r["egress_guard"].append("oifname @wg_ifaces return")
    for v, ip in ((4, "ip"), (6, "ip6")):
        # Mark tenant packets so the ip rule trie picks the tenant's table.
        r["tenant_mark"].append(f"meta mark set {ip} saddr map @mark_v{v}")
        # Isolation: tenant-to-tenant forwarding only inside one tenant.
        r["tenant_isolation"].append(f"{ip} saddr . {ip} daddr @same_tenant_v{v} return")
        r["tenant_isolation"].append(f"{ip} saddr @pools_v{v} {ip} daddr @pools_v{v} counter drop")
        # Source NAT through a map: one lookup whatever the number of tenants.
        r["egress_snat"].append(f"snat {ip} to {ip} saddr map @snat_v{v}")
        # Fail-closed guard: a connection that began in a tenant pool leaves only
        # with that tenant's egress address, whatever NAT ran (or did not run). Only here is
        # FROM_WG cleared: the tc guard on the uplinks drops every packet that still has it.
        r["egress_guard"].append(
            f"ct original {ip} saddr . {ip} saddr @egress_ok_v{v} "
            f"meta mark & {naming.MARK_MASK:#x} . {ip} saddr @egress_mark_v{v} "
            f"meta mark set meta mark & {CLEAR_FROM_WG:#x} return"
        )
        r["egress_guard"].append(f"ct original {ip} saddr @pools_v{v} counter drop")
        r["egress_guard"].append(f"{ip} saddr @pools_v{v} counter drop")
    return r


# Only when an HA interface has an IP endpoint (issue 14): its WireGuard packets' source.
HA_CHAIN = "ha_endpoint"
# The output hook: only the host's own packets. In postrouting a tenant's forwarded packet from
# source port 51820 would match too and leave with the endpoint's address instead of its egress.
HA_HOOK = "type filter hook output priority filter; policy accept;"


def _endpoint_source(state: State) -> list[str]:
    """An HA interface's WireGuard packets leave from its floating endpoint address. A gateway
    that starts a handshake itself (the takeover kick) would otherwise send it from its own
    address, the client would roam to that and lose the gateway with its next failure.
    Stateless (no NAT): a client that also sent to the endpoint already has a conntrack entry
    for that very pair, and source NAT would pick another port to avoid the clash."""
    out = []
    for iface in sorted(state.interfaces, key=lambda i: i.name):
        ip = ha.endpoint_ip(iface) if ha.is_ha(iface) else None
        if ip is not None:
            fam = "ip" if ip.version == 4 else "ip6"
            out.append(
                f"udp sport {iface.listen_port} {fam} saddr != {ip} {fam} saddr set {ip} "
                f'comment "ha endpoint {iface.name}"'
            )
    return out


def render(state: State) -> NftSpec:
    """The whole wggw table for `state`; an empty state renders a delete only."""
    tenants = sorted(state.tenants, key=lambda t: t.table)
    ifaces = sorted(i.name for i in state.interfaces)
    if not tenants and not ifaces:
        return NftSpec(f"table {TABLE} {{}}\ndelete table {TABLE}\n", "")
    fams = {v: _family_data(tenants, v) for v in (4, 6)}
    decls, elements = _declarations(ifaces, fams)
    # Digest of everything rendered, so a new wggw version's rules count as a change.
    floating = _endpoint_source(state)
    text = "\n".join(decls + floating) + repr(_rules(""))
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    body = decls[:]
    chains = _rules(digest)
    hooks = dict(CHAINS)
    if floating:
        chains[HA_CHAIN], hooks[HA_CHAIN] = floating, HA_HOOK
    for name, rules in chains.items():
        body.append(
            f"\tchain {name} {{\n\t\t{hooks[name]}\n"
            + "".join(f"\t\t{rule}\n" for rule in rules)
            + "\t}"
        )
    inner = "\n".join(body)
    text = f"table {TABLE} {{}}\ndelete table {TABLE}\ntable {TABLE} {{\n{inner}\n}}\n"
    return NftSpec(text, digest, tuple(sorted(elements.items())))

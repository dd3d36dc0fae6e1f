"""The faults the suite inflicts on a converged gateway, each as plain commands an admin, a
firewall reload or the kernel would run: `inject` breaks, `end` is the host's own part of the
recovery (a link coming back up, the network configuration restoring its routes) and never
does wggw's work.

Each fault names the tenant streams it may cut (blocking is fail-closed and allowed; leaking is
not) and whether a leak is possible *by construction*: only `inplace_snat_and_guard`, which
rewrites both the SNAT map and the guard set so that acme's pool is told to leave as globex.
No mechanism can overrule root's own NAT instruction; there wggw's promise is that `plan`
sees it and `apply` ends it (see RELIABILITY.md).
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

from faultlab import TENANTS, FaultLab, wait_until

from wggw.core import naming

TABLE = f"{naming.NFT_FAMILY} {naming.NFT_TABLE}"


def _nothing(fl: FaultLab) -> None:
    return None


def _nft(fl: FaultLab, *args: str) -> None:
    fl.lab.gw.run(["nft", *args])


def _nft_script(fl: FaultLab, text: str) -> None:
    fl.lab.gw.run(["nft", "-f", "-"], input=text)


# --- the faults ------------------------------------------------------------------------------
def nft_flush_ruleset(fl: FaultLab) -> None:
    _nft(fl, "flush", "ruleset")


def nft_delete_table(fl: FaultLab) -> None:
    _nft(fl, "delete", "table", naming.NFT_FAMILY, naming.NFT_TABLE)


def ip_rules_deleted(fl: FaultLab) -> None:
    """Every ip rule in wggw's priority window, v4 and v6, in one `ip -batch` per family."""
    for fam in ("-4", "-6"):
        rules = json.loads(fl.lab.gw.ip(fam, "-j", "rule", "show").stdout)
        prefs = [r["priority"] for r in rules if naming.owns_rule_pref(r["priority"])]
        if prefs:
            batch = "".join(f"rule del pref {p}\n" for p in prefs)
            fl.lab.gw.run(["ip", fam, "-batch", "-"], input=batch)


def tenant_table_flushed(fl: FaultLab) -> None:
    table = str(fl.tables["acme"])
    for fam in ("-4", "-6"):
        fl.lab.gw.ip(fam, "route", "flush", "table", table)


def uplink_down(fl: FaultLab) -> None:
    fl.lab.gw.ip("link", "set", fl.lab.uplink_dev, "down")


def uplink_up(fl: FaultLab) -> None:
    fl.restore_infra()  # link up, and the lab's own addresses/routes the kernel dropped with it


def _inplace(fl: FaultLab, snat: bool, guard: bool) -> None:
    """Point acme's elements at globex's egress in one transaction: same element counts."""
    lines = []
    for i, v in enumerate((4, 6)):
        pool = TENANTS["acme"]["pools"][i]
        mine, theirs = TENANTS["acme"]["egress"][i], TENANTS["globex"]["egress"][i]
        if snat:
            lines += [
                f"delete element {TABLE} snat_v{v} {{ {pool} }}",
                f"add element {TABLE} snat_v{v} {{ {pool} : {theirs} }}",
            ]
        if guard:
            lines += [
                f"delete element {TABLE} egress_ok_v{v} {{ {pool} . {mine} }}",
                f"add element {TABLE} egress_ok_v{v} {{ {pool} . {theirs} }}",
            ]
    _nft_script(fl, "\n".join(lines) + "\n")


def foreign_chain_rule(fl: FaultLab) -> None:
    """A masquerade slipped into wggw's own SNAT chain ahead of its map: only the guard stands
    between the tenants and the uplink's own address."""
    for ip, v in (("ip", 4), ("ip6", 6)):
        _nft(
            fl,
            "insert",
            "rule",
            *TABLE.split(),
            "egress_snat",
            ip,
            "saddr",
            f"@pools_v{v}",
            "masquerade",
        )


def sysctls_reset(fl: FaultLab) -> None:
    fl.lab.gw.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0"])


def _del_addrs(fl: FaultLab, dev: str, wanted: Callable[[str], bool]) -> None:
    links = json.loads(fl.lab.gw.ip("-j", "addr", "show", "dev", dev).stdout)
    gone = [
        f"{a['local']}/{a['prefixlen']}"
        for link in links
        for a in link.get("addr_info", [])
        if wanted(a["local"])
    ]
    assert gone, f"no address to remove on {dev}"
    for addr in gone:
        fl.lab.gw.ip("addr", "del", addr, "dev", dev)


def egress_addr_removed(fl: FaultLab) -> None:
    _del_addrs(fl, fl.lab.uplink_dev, lambda a: a in TENANTS["acme"]["egress"])


def gateway_addr_removed(fl: FaultLab) -> None:
    first = {"10.10.0.1", "fd00:a::1"}  # acme's gateway addresses: the first host of each pool
    _del_addrs(fl, fl.ifname, lambda a: a in first)


def wireguard_killed(fl: FaultLab) -> None:
    """kill -9 the gateway's wireguard-go (with kernel WireGuard: the link is deleted)."""
    pid = fl.wireguard_go_pid()
    if pid is None:
        fl.lab.gw.ip("link", "del", fl.ifname)
        return
    os.kill(pid, signal.SIGKILL)


def wireguard_killed_after_roam(fl: FaultLab) -> None:
    """Both clients come back from new source ports (a NAT rebinding, a roaming laptop), then
    the gateway's wireguard-go dies before any wggw command has looked at the peers again: the
    endpoints wggw remembers are stale, so only the clients' own retry brings them back."""
    for tenant in TENANTS:
        fl.lab.client(tenant).replace_wireguard(fl.confs[tenant])
    wait_until(
        lambda: all(fl.lab.client(t).handshake_age() is not None for t in TENANTS),
        timeout=10.0,
        interval=0.05,
        what="handshakes from the new client ports",
    )
    wireguard_killed(fl)


def foreign_ip_rule(fl: FaultLab) -> None:
    for fam in ("-4", "-6"):
        fl.lab.gw.ip(fam, "rule", "add", "pref", "100", "lookup", "main")


def foreign_ip_rule_removed(fl: FaultLab) -> None:
    for fam in ("-4", "-6"):
        fl.lab.gw.ip(fam, "rule", "del", "pref", "100", "lookup", "main", check=False)


@dataclass(frozen=True)
class Fault:
    name: str
    inject: Callable[[FaultLab], None]
    end: Callable[[FaultLab], None] = _nothing
    # Re-run on kernel WireGuard by scripts/vm-test: a few, as each costs a minute or more
    # under emulation (the tier must stay near 10 minutes).
    kernel_tier: bool = False


SINGLE = [
    Fault("nft_flush_ruleset", nft_flush_ruleset, kernel_tier=True),
    Fault("nft_delete_table", nft_delete_table),
    Fault("ip_rules_deleted", ip_rules_deleted),
    Fault("tenant_table_flushed", tenant_table_flushed),
    Fault("uplink_flap", uplink_down, uplink_up, kernel_tier=True),
    Fault("inplace_snat_map", lambda fl: _inplace(fl, snat=True, guard=False)),
    Fault("inplace_guard_set", lambda fl: _inplace(fl, snat=False, guard=True)),
    Fault("inplace_snat_and_guard", lambda fl: _inplace(fl, snat=True, guard=True)),
    Fault("foreign_chain_rule", foreign_chain_rule),
    Fault("sysctls_reset", sysctls_reset),
    Fault("egress_addr_removed", egress_addr_removed),
    Fault("gateway_addr_removed", gateway_addr_removed),
    Fault("wireguard_killed", wireguard_killed),
]
BY_NAME = {f.name: f for f in SINGLE}
# Not drift (wggw does not own it): `status --check` must report it; see faulttrial.
FOREIGN_IP_RULE = Fault("foreign_ip_rule", foreign_ip_rule)


def pair(a: str, b: str) -> Fault:
    """Two faults at once: both injected, both ended (in order)."""
    fa, fb = BY_NAME[a], BY_NAME[b]

    def inject(fl: FaultLab) -> None:
        fa.inject(fl)
        fb.inject(fl)

    def end(fl: FaultLab) -> None:
        fa.end(fl)
        fb.end(fl)

    return Fault(f"{a}+{b}", inject, end)


# Alone only: its repair waits on the clients' retry timers (about 15 s) until endpoints that
# changed since wggw last looked are learnt some other way.
ROAM = Fault("wireguard_killed_after_roam", wireguard_killed_after_roam)

# "Any two together" of the layers fail-closed depends on: nft gone (flushed, or deleted
# where the pair is with the tenant table), the ip rules, the tenant's table, the uplink.
PAIRS = [
    pair("nft_flush_ruleset", "ip_rules_deleted"),
    pair("nft_delete_table", "tenant_table_flushed"),
    pair("nft_flush_ruleset", "uplink_flap"),
    pair("ip_rules_deleted", "tenant_table_flushed"),
    pair("ip_rules_deleted", "uplink_flap"),
    pair("tenant_table_flushed", "uplink_flap"),
]

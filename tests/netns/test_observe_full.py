"""Observation sees the full content of everything wggw owns (issue 9, defect 2).

For each kind of owned object, an edit in place, a deletion and an addition made behind wggw's
back on a converged gateway: `plan --detailed-exitcode` shows it (exit 2), `apply` repairs it
(and verifies), and the re-plan is empty. The edits are chosen to keep counts equal (the old
observation compared a digest and counts), e.g. acme's SNAT element pointed at globex's egress
IP, a rule replaced by one with a different verdict, a route given an MTU, an address given a
lifetime, a WireGuard device given a fwmark.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from gwhelper import TENANTS, up

from wggw.core import keys, naming, ruletree

ACME_POOL4, GLOBEX_EGRESS4 = TENANTS["acme"]["pools"][0], TENANTS["globex"]["egress"][0]
ACME_EGRESS4 = TENANTS["acme"]["egress"][0]
TABLE = str(naming.TABLE_MIN)  # acme's
CBPF_CONTINUE = "1,6 0 0 4294967295,"  # classic BPF "ret -1": another program at wggw's priority


@dataclass
class Gw:
    lab: object
    ifname: str
    acme_key: str

    def nft(self, *cmd: str) -> None:
        self.lab.gw.run(["nft", *cmd])

    def ip(self, *args: str) -> None:
        self.lab.gw.ip(*args)

    def run(self, *argv: str) -> None:
        self.lab.gw.run(list(argv))

    def handle(self, chain: str, needle: str) -> str:
        text = self.lab.gw.run(["nft", "-a", "list", "chain", "inet", "wggw", chain]).stdout
        line = next(ln for ln in text.splitlines() if needle in ln)
        return line.rsplit("# handle ", 1)[1].strip()


def _element(gw: Gw, verb: str, set_name: str, element: str) -> None:
    gw.nft(verb, "element", "inet", "wggw", set_name, f"{{ {element} }}")


def _swap(gw: Gw, set_name: str, old: str, new: str) -> None:
    _element(gw, "delete", set_name, old)
    _element(gw, "add", set_name, new)


GUARD_DROP = "ip saddr @pools_v4 counter"
MUTATIONS = {
    # nft set elements: acme vouched for with globex's egress (same count)
    "set-edit": lambda g: _swap(
        g, "egress_ok_v4", f"{ACME_POOL4} . {ACME_EGRESS4}", f"{ACME_POOL4} . {GLOBEX_EGRESS4}"
    ),
    "set-delete": lambda g: _element(g, "delete", "egress_ok_v4", f"{ACME_POOL4} . {ACME_EGRESS4}"),
    "set-add": lambda g: _element(g, "add", "egress_ok_v4", "10.99.0.0/24 . 203.0.113.99"),
    # nft map elements: acme NATed to globex's egress (same count)
    "map-edit": lambda g: _swap(
        g, "snat_v4", f"{ACME_POOL4} : {ACME_EGRESS4}", f"{ACME_POOL4} : {GLOBEX_EGRESS4}"
    ),
    "map-delete": lambda g: _element(g, "delete", "snat_v4", f"{ACME_POOL4} : {ACME_EGRESS4}"),
    "map-add": lambda g: _element(g, "add", "snat_v4", "10.99.0.0/24 : 203.0.113.99"),
    # nft rules: the guard's drop becomes an accept (same count)
    "rule-edit": lambda g: g.nft(
        "replace",
        "rule",
        "inet",
        "wggw",
        "egress_guard",
        "handle",
        g.handle("egress_guard", GUARD_DROP),
        "ip",
        "saddr",
        "@pools_v4",
        "counter",
        "accept",
    ),
    "rule-delete": lambda g: g.nft(
        "delete",
        "rule",
        "inet",
        "wggw",
        "egress_guard",
        "handle",
        g.handle("egress_guard", GUARD_DROP),
    ),
    "rule-add": lambda g: g.nft("insert", "rule", "inet", "wggw", "egress_guard", "accept"),
    # nft chains
    "chain-edit": lambda g: g.nft("chain", "inet", "wggw", "tenant_isolation", "{ policy drop; }"),
    "chain-delete": lambda g: (
        g.nft("flush", "chain", "inet", "wggw", "tenant_isolation"),
        g.nft("delete", "chain", "inet", "wggw", "tenant_isolation"),
    ),
    "chain-add": lambda g: g.nft("add", "chain", "inet", "wggw", "extra"),
    # ip rules: the fail-closed rule gains a selector (so it no longer holds for most packets)
    "iprule-edit": lambda g: (
        g.ip("rule", "del", "pref", str(ruletree.PREF_UNREACHABLE)),
        g.ip(
            "rule",
            "add",
            "pref",
            str(ruletree.PREF_UNREACHABLE),
            "from",
            "10.99.0.0/16",
            "fwmark",
            f"{naming.MARK_FLAG:#x}/{naming.MARK_FLAG:#x}",
            "unreachable",
        ),
    ),
    "iprule-delete": lambda g: g.ip("rule", "del", "pref", str(ruletree.PREF_IIF)),
    "iprule-add": lambda g: g.ip("rule", "add", "pref", "20000", "lookup", "main"),
    # routes: acme's default route gets an MTU; a blackhole appears in acme's table
    "route-edit": lambda g: g.ip(
        "route",
        "change",
        "default",
        "via",
        "203.0.113.254",
        "dev",
        g.lab.uplink_dev,
        "src",
        ACME_EGRESS4,
        "table",
        TABLE,
        "mtu",
        "1280",
    ),
    "route-delete": lambda g: g.ip("route", "del", ACME_POOL4, "table", TABLE),
    "route-add": lambda g: g.ip("route", "add", "blackhole", "198.51.100.0/24", "table", TABLE),
    # addresses on wggw's interface
    "addr-edit": lambda g: g.ip(
        "addr",
        "change",
        "10.10.0.1/24",
        "dev",
        g.ifname,
        "valid_lft",
        "3600",
        "preferred_lft",
        "3600",
    ),
    "addr-delete": lambda g: g.ip("addr", "del", "10.10.0.1/24", "dev", g.ifname),
    "addr-add": lambda g: g.ip("addr", "add", "10.10.0.77/24", "dev", g.ifname),
    # tc: the uplink's guard swapped for a program that lets everything through
    "tc-edit": lambda g: g.run(
        "tc",
        "filter",
        "replace",
        "dev",
        g.lab.uplink_dev,
        "egress",
        "prio",
        str(naming.TC_PRIO),
        "handle",
        "1",
        "bpf",
        "bytecode",
        CBPF_CONTINUE,
    ),
    "tc-delete": lambda g: g.run(
        "tc", "filter", "del", "dev", g.lab.uplink_dev, "egress", "prio", str(naming.TC_PRIO)
    ),
    "tc-add": lambda g: g.run(
        "tc",
        "filter",
        "add",
        "dev",
        g.lab.uplink_dev,
        "egress",
        "prio",
        str(naming.TC_PRIO),
        "handle",
        "2",
        "bpf",
        "bytecode",
        CBPF_CONTINUE,
    ),
    # WireGuard: a peer given an address of globex's pool, removed, added; the device's fwmark
    "peer-edit": lambda g: g.run(
        "wg",
        "set",
        g.ifname,
        "peer",
        g.acme_key,
        "allowed-ips",
        "10.10.0.2/32,fd00:a::2/128,10.20.0.99/32",
    ),
    "peer-delete": lambda g: g.run("wg", "set", g.ifname, "peer", g.acme_key, "remove"),
    "peer-add": lambda g: g.run(
        "wg", "set", g.ifname, "peer", keys.keypair()[1], "allowed-ips", "10.10.0.50/32"
    ),
    "device-edit": lambda g: g.run("wg", "set", g.ifname, "fwmark", "0x1234"),
}


@pytest.fixture(scope="module")
def gw(module_lab):
    lab = module_lab
    gateway = up(lab)
    peer = json.loads(lab.wggw("peer", "show", "acme/laptop", "--json").stdout)
    yield Gw(lab, gateway.ifname, peer["public_key"])
    lab.wggw("down")


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_a_change_behind_wggws_back_is_planned_and_repaired(gw, name):
    lab = gw.lab
    lab.wggw("apply")  # converged before, even if an earlier case failed half-way
    lab.wggw("plan", "--detailed-exitcode")
    MUTATIONS[name](gw)
    drift = lab.wggw("plan", "--detailed-exitcode", ok_codes=(2,)).stdout
    assert "[#]" in drift, drift
    lab.wggw("apply")  # verifies: anything left to change is an error
    lab.wggw("plan", "--detailed-exitcode")


def test_traffic_still_leaves_by_each_egress(gw):
    """After every repair above, both tenants still leave by their own egress IP."""
    from gwhelper import Gateway

    view = Gateway(gw.lab, gw.ifname)
    for tenant, t in TENANTS.items():
        assert view.seen(tenant, 4) == t["egress"][0]
        assert view.seen(tenant, 6) == t["egress"][1]

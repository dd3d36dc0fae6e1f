"""Fail closed whatever single mechanism, or pair of mechanisms, is gone (issue 9, defect 1).

A converged two-tenant gateway; the internet host routes the tenant pools back to the
gateway, so a packet that leaves un-NATed (or NATed to the wrong address) arrives and is
counted there by source (an nft counter in the internet namespace), instead of merely
timing out. For each fault, and every pair of faults, among

  N  wggw's nftables table gone (`nft flush ruleset`)
  R  wggw's ip rules gone (every rule in its priority window deleted)
  T  acme's routing table flushed (v4 and v6)
  U  the uplink flapped (down, up; main's default routes put back as a DHCP client would)

each tenant's client sends UDP datagrams (v4 and v6) to the internet host: not one may arrive
with a source other than that tenant's egress IP. Then `plan` shows the drift (exit 2),
`apply` repairs it, the re-plan is empty and both tenants leave by their egress again.
"""

from __future__ import annotations

import itertools
import json
import sys
import time

import pytest
from gwhelper import TENANTS, up

from wggw.core import naming
from wggw.lab.topology import GW_UPLINK_V4, GW_UPLINK_V6, INET_V4, INET_V6

FAULTS = ("N", "R", "T", "U")
CASES = [(f,) for f in FAULTS] + list(itertools.combinations(FAULTS, 2))
SENDS = 12  # datagrams per family per tenant and probe

COUNT_NFT = """table inet fcg_count {
  chain pre { type filter hook prerouting priority -400; policy accept;
%s
  }
}
"""

# One probe: send SENDS datagrams per family to the echo port, count the echoes (bounded).
UDP_PROBE = r"""
import json, socket, sys, time
out = {}
for fam, dst in ((socket.AF_INET, sys.argv[1]), (socket.AF_INET6, sys.argv[2])):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0" if fam == socket.AF_INET else "::", int(sys.argv[4])))
    s.settimeout(0.05)
    got = 0
    for i in range(int(sys.argv[3])):
        try:
            s.sendto(b"wggw-probe", (dst, 7))
        except OSError:
            pass  # unreachable: the tunnel's route or the gateway refused it
        deadline = time.monotonic() + 0.05
        while time.monotonic() < deadline:
            try:
                s.recvfrom(64)
                got += 1
            except OSError:
                break
    out[4 if fam == socket.AF_INET else 6] = got
print(json.dumps(out))
"""


# Each tenant's client probes from its own UDP source port (SNAT keeps it: no clash), so a
# datagram counts for the tenant that sent it even when it arrives late (held in a neighbour
# queue after an uplink flap, say), not for whichever probe runs at the time.
PROBE_PORT = {tenant: 40000 + i for i, tenant in enumerate(TENANTS)}


def _count_rules() -> str:
    lines = []
    for sender, port in PROBE_PORT.items():
        match = f"udp sport {port} udp dport 7"
        for tenant, t in TENANTS.items():
            lines.append(
                f'    {match} ip saddr {t["egress"][0]} counter comment "{sender}:{tenant}"'
            )
            lines.append(
                f'    {match} ip6 saddr {t["egress"][1]} counter comment "{sender}:{tenant}"'
            )
        for fam, pools, gw in (
            ("ip", "10.0.0.0/8", GW_UPLINK_V4),
            ("ip6", "fd00::/8", GW_UPLINK_V6),
        ):
            lines.append(f'    {match} {fam} saddr {pools} counter comment "{sender}:pool"')
            lines.append(f'    {match} {fam} saddr {gw} counter comment "{sender}:gateway"')
        lines.append(f'    {match} counter comment "{sender}:any"')
    return "\n".join(lines)


class Counter:
    """Datagrams that reached the internet host's echo port, by source (egress of a tenant,
    or anything)."""

    def __init__(self, lab):
        self.lab = lab
        lab.inet.run(["nft", "-f", "-"], input=COUNT_NFT % _count_rules())

    def settled(self, quiet: float = 0.6, limit: float = 5.0) -> dict[str, int]:
        """Counts once nothing arrived for `quiet` seconds (at most `limit`): datagrams held
        in a neighbour queue (after an uplink flap, say) must count in their own probe."""
        deadline = time.monotonic() + limit
        last, since = self.read(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = self.read()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                break
        return last

    def read(self) -> dict[str, int]:
        text = self.lab.inet.run(["nft", "-j", "list", "table", "inet", "fcg_count"]).stdout
        out: dict[str, int] = {}
        for obj in json.loads(text)["nftables"]:
            rule = obj.get("rule")
            if rule:
                packets = next(e["counter"]["packets"] for e in rule["expr"] if "counter" in e)
                out[rule["comment"]] = out.get(rule["comment"], 0) + packets
        return out


def probe(lab, counter: Counter, tenant: str) -> tuple[dict, int, int]:
    """Send from `tenant`'s client; returns (echoes per family, datagrams that arrived from
    the tenant's own egress, datagrams that arrived from any other source). The last
    probe's arrivals by source are kept in counter.last for messages."""
    before = counter.read()
    res = lab.client(tenant).run(
        ["python3", "-c", UDP_PROBE, INET_V4, INET_V6, str(SENDS), str(PROBE_PORT[tenant])],
        timeout=30,
    )
    after = counter.settled()
    mine = f"{tenant}:"  # what this tenant's client sent, whenever it arrived
    delta = {
        k.removeprefix(mine): after.get(k, 0) - before.get(k, 0)
        for k in after
        if k.startswith(mine)
    }
    counter.last = delta
    own = delta.get(tenant, 0)
    return json.loads(res.stdout), own, delta.get("any", 0) - own


@pytest.fixture(scope="module")
def gw(module_lab):
    lab = module_lab
    gateway = up(lab)
    # The internet host routes the pools back: a leaked packet completes and is seen.
    for t in TENANTS.values():
        lab.inet.ip("route", "add", t["pools"][0], "via", GW_UPLINK_V4)
        lab.inet.ip("-6", "route", "add", t["pools"][1], "via", GW_UPLINK_V6)
    counter = Counter(lab)
    for tenant in TENANTS:
        assert gateway.seen(tenant, 4) == TENANTS[tenant]["egress"][0]
        assert gateway.seen(tenant, 6) == TENANTS[tenant]["egress"][1]
    yield lab, counter
    lab.wggw("down")


def _drop_rules(lab) -> None:
    for fam in ("-4", "-6"):
        lines = lab.gw.ip(fam, "rule", "show").stdout.splitlines()
        prefs = sorted(
            {
                int(p)
                for p in (line.split(":")[0] for line in lines)
                if p.isdigit() and naming.owns_rule_pref(int(p))
            }
        )
        assert prefs, "no wggw rule to delete"
        batch = "".join(f"rule del pref {p}\n" for p in prefs)
        lab.gw.run(["ip", fam, "-batch", "-"], input=batch)


def _flap_uplink(lab) -> None:
    lab.gw.ip("link", "set", lab.uplink_dev, "down")
    lab.gw.ip("link", "set", lab.uplink_dev, "up")
    # What the network's DHCP/RA would do: the host's own IPv6 address (the kernel drops
    # global IPv6 addresses on link down) and main's default routes come back at once, so a
    # tenant packet that fell through to main would have a way out.
    lab.gw.ip("-6", "addr", "replace", f"{GW_UPLINK_V6}/64", "dev", lab.uplink_dev, "nodad")
    lab.gw.ip("-4", "route", "replace", "default", "via", INET_V4, "dev", lab.uplink_dev)
    lab.gw.ip("-6", "route", "replace", "default", "via", INET_V6, "dev", lab.uplink_dev)


def inflict(lab, fault: str) -> None:
    if fault == "N":
        lab.gw.run(["nft", "flush", "ruleset"])
    elif fault == "R":
        _drop_rules(lab)
    elif fault == "T":
        table = str(naming.TABLE_MIN)  # acme's: the first tenant added
        lab.gw.ip("-4", "route", "flush", "table", table)
        lab.gw.ip("-6", "route", "flush", "table", table)
    elif fault == "U":
        _flap_uplink(lab)


@pytest.mark.kernel_tier
def test_the_layers_are_in_place(gw):
    """The three layers, as the kernel shows them: nft, the iif rules, the tc programs."""
    lab, _ = gw
    links = lab.gw.ip("-o", "link", "show").stdout.splitlines()
    ifname = next(line.split(":")[1].strip() for line in links if naming.LINK_ALIAS in line)
    for fam in ("-4", "-6"):
        assert f"iif {ifname} unreachable" in lab.gw.ip(fam, "rule", "show").stdout
    ingress = lab.gw.run(["tc", "filter", "show", "dev", ifname, "ingress"]).stdout
    egress = lab.gw.run(["tc", "filter", "show", "dev", lab.uplink_dev, "egress"]).stdout
    assert naming.TC_PROG_INGRESS in ingress and "direct-action" in ingress
    assert naming.TC_PROG_EGRESS in egress and "direct-action" in egress


# On the kernel module too (scripts/vm-test): nft gone alone, and with the ip rules (the tc layer).
KERNEL_TIER = {("N",), ("N", "R")}


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param(c, marks=[pytest.mark.kernel_tier] if c in KERNEL_TIER else [], id="+".join(c))
        for c in CASES
    ],
)
def test_no_packet_leaves_with_a_wrong_source(gw, faults):
    lab, counter = gw
    lab.wggw("apply")  # from a converged gateway, even if an earlier case failed half-way
    for fault in faults:
        inflict(lab, fault)
    for tenant in TENANTS:
        _echoes, _own, wrong = probe(lab, counter, tenant)
        assert wrong == 0, (
            f"{tenant}: {wrong} datagrams left with a wrong source under {faults}: {counter.last}"
        )
    drift = lab.wggw("plan", "--detailed-exitcode", ok_codes=(2,)).stdout
    assert "[#]" in drift
    lab.wggw("apply")
    lab.wggw("plan", "--detailed-exitcode")  # exit 0: nothing left to do
    for tenant in TENANTS:
        echoes, own, wrong = probe(lab, counter, tenant)
        assert wrong == 0 and own > 0, f"{tenant} after repair: own {own}, wrong {wrong}"
        assert echoes["4"] > 0 and echoes["6"] > 0, f"{tenant} after repair: {echoes}"


def test_the_capture_sees_a_leak_when_all_three_layers_are_gone(gw):
    """The control: with nft, the ip rules and the tc guard all gone (three faults, beyond
    what wggw promises), pool addresses do arrive at the internet host and are counted. So
    the zeros above are the layers' doing, not a capture that cannot see a leak."""
    lab, counter = gw
    lab.wggw("apply")
    inflict(lab, "N")
    inflict(lab, "R")
    lab.gw.run(
        ["tc", "filter", "del", "dev", lab.uplink_dev, "egress", "prio", str(naming.TC_PRIO)]
    )
    _echoes, _own, wrong = probe(lab, counter, "acme")
    assert wrong > 0 and counter.last.get("pool", 0) == wrong, counter.last
    lab.wggw("apply")
    lab.wggw("plan", "--detailed-exitcode")
    _echoes, own, wrong = probe(lab, counter, "acme")
    assert wrong == 0 and own > 0, counter.last


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))

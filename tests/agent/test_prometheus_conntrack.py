"""The egress port-usage count against the real kernel: conntrack entries put into a scratch
namespace's table through ctnetlink, counted by reply-direction destination (the SNATed
source), cut at the limit, and published by the agent's collector next to the ports SNAT can
pick from."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from wggw.lab.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[2]

# Runs inside the namespace: adds entries (pyroute2), then counts them (wggw) and prints JSON.
SCRIPT = r"""
import json, socket, sys
from types import SimpleNamespace
from pyroute2 import Conntrack
from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple as T
from wggw.agent.egress_metrics import EgressPorts
from wggw.backends import conntrack

plan = {"203.0.113.10": 120, "203.0.113.20": 35, "198.51.100.7": 9}  # the last: not an egress
with Conntrack() as ct:
    port = 2000
    for egress, n in plan.items():
        for _ in range(n):
            port += 1
            ct.entry("add", timeout=300,
                     tuple_orig=T(saddr="10.10.0.2", daddr="203.0.113.254", proto=17,
                                  sport=port, dport=53),
                     tuple_reply=T(saddr="203.0.113.254", daddr=egress, proto=17,
                                   sport=53, dport=port))
full = conntrack.count_by_reply_dst(["203.0.113.10", "203.0.113.20", "2001:db8:ffff::10"])
cut = conntrack.count_by_reply_dst(["203.0.113.10"], limit=10)
tenants = [SimpleNamespace(name="acme", egress=("203.0.113.10", "2001:db8:ffff::10")),
           SimpleNamespace(name="globex", egress=("203.0.113.20",))]
fams = {f.name: [(s.labels, s.value) for s in f.samples]
        for f in EgressPorts().families(SimpleNamespace(tenants=tenants))}
print(json.dumps({"full": full, "cut": cut, "fams": fams}))
"""


def test_conntrack_entries_counted_per_egress(require_root: None) -> None:
    box = Sandbox("wggw", "wc")
    try:
        ns = box.add_ns("ct")
        env = {"PYTHONPATH": str(REPO), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        out = ns.run([sys.executable, "-c", SCRIPT], env=env, timeout=120).stdout
    finally:
        box.close()
    got = json.loads(out)
    counts, truncated = got["full"]
    assert counts == {"203.0.113.10": 120, "203.0.113.20": 35, "2001:db8:ffff::10": 0}
    assert not truncated
    cut_counts, cut_truncated = got["cut"]
    assert cut_truncated and cut_counts["203.0.113.10"] <= 164  # one read at most past the cut
    entries = {
        (s["tenant"], s["egress"]): v for s, v in got["fams"]["wggw_egress_conntrack_entries"]
    }
    assert entries == {
        ("acme", "203.0.113.10"): 120,
        ("acme", "2001:db8:ffff::10"): 0,
        ("globex", "203.0.113.20"): 35,
    }
    ports = {s["egress"]: v for s, v in got["fams"]["wggw_egress_ports_available"]}
    assert ports == dict.fromkeys(("203.0.113.10", "2001:db8:ffff::10", "203.0.113.20"), 64512)

"""What the agent's egress port-usage count costs per scrape, by conntrack table size.

    sudo .venv/bin/python benchmarks/conntrack_count.py [--entries 10000,50000] [--repeats 5]

For each size: a scratch namespace whose table is filled through ctnetlink (UDP entries whose
reply goes to one of two egress IPs), then wggw's count (wggw/backends/conntrack.py: one dump,
minimal parser) against the baseline of pyroute2's `Conntrack.dump()` over the same table, in
the same run. Prints one JSON object; the namespace goes away whatever happens.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from wggw.lab.sandbox import Sandbox  # noqa: E402

# Runs inside the namespace: argv = entries repeats; prints {"wggw": [s...], "pyroute2": [s...]}.
INNER = r"""
import json, sys, time
from pyroute2 import Conntrack
from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple as T
from wggw.backends import conntrack
n, repeats = int(sys.argv[1]), int(sys.argv[2])
with Conntrack() as ct:
    for i in range(n):
        egress = ("203.0.113.10", "203.0.113.20")[i % 2]
        src, port = f"10.10.{i // 60000}.2", 1024 + i % 60000
        ct.entry("add", timeout=600,
                 tuple_orig=T(saddr=src, daddr="203.0.113.254", proto=17, sport=port, dport=53),
                 tuple_reply=T(saddr="203.0.113.254", daddr=egress, proto=17, sport=53,
                               dport=port))
out = {"wggw": [], "pyroute2": []}
for _ in range(repeats):
    t = time.perf_counter()
    counts, cut = conntrack.count_by_reply_dst(["203.0.113.10", "203.0.113.20"], limit=1 << 22)
    out["wggw"].append(time.perf_counter() - t)
    assert sum(counts.values()) == n and not cut, counts
    t = time.perf_counter()
    with Conntrack() as ct:
        seen = sum(1 for _ in ct.dump())
    out["pyroute2"].append(time.perf_counter() - t)
    assert seen == n, seen
print(json.dumps(out))
"""


def measure(entries: int, repeats: int) -> dict:
    box = Sandbox("wggw", "wb")
    try:
        ns = box.add_ns("ct")
        env = {"PYTHONPATH": str(Path(__file__).resolve().parent.parent), "PATH": "/usr/bin:/bin"}
        argv = [sys.executable, "-c", INNER, str(entries), str(repeats)]
        out = json.loads(ns.run(argv, env=env, timeout=60 + entries / 100).stdout)
    finally:
        box.close()
    ours, base = statistics.median(out["wggw"]), statistics.median(out["pyroute2"])
    return {
        "entries": entries,
        "wggw_s": {"median": ours, "min": min(out["wggw"]), "max": max(out["wggw"])},
        "pyroute2_s": {"median": base, "min": min(out["pyroute2"]), "max": max(out["pyroute2"])},
        "us_per_entry": ours / entries * 1e6,
        "ratio_to_pyroute2": ours / base,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", default="10000,50000")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = [measure(int(n), args.repeats) for n in args.entries.split(",")]
    print(json.dumps({"conntrack_count": rows}, indent=2))


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as e:
        sys.exit(f"conntrack benchmark failed: {e}")

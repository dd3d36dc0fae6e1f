"""The agent's drift repair announces an egress address it puts back (it is the same apply
as `wggw apply`; tests/netns/test_egress_announce.py covers that one): a neighbour on the
uplink whose entry for the address still names another MAC learns the gateway's at once."""

from __future__ import annotations

import json
import os
import time

from wggw.lab.topology import INET_DEV, UPLINK_DEV

EGRESS = {"203.0.113.10": "32", "2001:db8:ffff::10": "128"}  # acme's (tests/netns/gwhelper.py)
OLD_MAC = "02:00:5e:00:53:99"
BOUND = 3.0 * float(os.environ.get("WGGW_TIME_SCALE", "1"))  # repair (~0.1 s) + announce


def _lladdr(lab, ip: str) -> str | None:
    entries = json.loads(lab.inet.ip("-j", "neigh", "show", ip, "dev", INET_DEV).stdout or "[]")
    return entries[0].get("lladdr") if entries else None


def test_repaired_egress_address_is_announced(agent_lab) -> None:
    lab, _, agents = agent_lab
    mac = json.loads(lab.gw.ip("-j", "link", "show", UPLINK_DEV).stdout)[0]["address"]
    before = agents[-1].log().count("arping -q -U")
    for ip, plen in EGRESS.items():
        lab.gw.ip("addr", "del", f"{ip}/{plen}", "dev", UPLINK_DEV)
        lab.inet.ip("neigh", "replace", ip, "lladdr", OLD_MAC, "dev", INET_DEV, "nud", "stale")
    t0 = time.monotonic()
    seen: dict[str, float] = {}
    for _ in range(int(BOUND / 0.01) + 1):
        seen.update(
            {
                ip: time.monotonic() - t0
                for ip in EGRESS
                if ip not in seen and _lladdr(lab, ip) == mac
            }
        )
        if len(seen) == len(EGRESS) or time.monotonic() - t0 > BOUND:
            break
        time.sleep(0.01)
    entries = {ip: _lladdr(lab, ip) for ip in EGRESS}
    assert set(seen) == set(EGRESS), f"inet still has {entries}, not {mac}, after {BOUND} s"
    assert agents[-1].log().count("arping -q -U") > before
    print(f"\n[agent] repaired egress announced, neighbour updated after {seen}")

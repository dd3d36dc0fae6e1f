"""An egress address wggw adds is announced at once (issue 13, `tenant move`): a neighbour
on the uplink that still holds an entry for it with another MAC (the gateway that had it a
moment ago) learns the new owner's MAC right after `wggw apply`, from a gratuitous ARP for
IPv4 and an unsolicited neighbour advertisement for IPv6, with its own sysctls at their
defaults. Without the announcement a STALE entry keeps the old MAC until traffic makes the
neighbour probe it (delay_first_probe_time, 5 s) or garbage collection drops it."""

from __future__ import annotations

import json
import os
import time

import pytest

from wggw.lab.topology import INET_DEV, UPLINK_DEV, Lab, new_ifname

EGRESS = ("203.0.113.10", "2001:db8:ffff::10")
OLD_MAC = "02:00:5e:00:53:99"  # the previous owner's (a documentation-style local MAC)
SCALE = float(os.environ.get("WGGW_TIME_SCALE", "1"))
BOUND = 1.0 * SCALE  # far below any re-probe of the kernel's own


@pytest.fixture
def lab(require_root: None):
    with Lab(()) as built:
        yield built


def _neigh(lab: Lab, ip: str) -> dict:
    out = lab.inet.ip("-j", "neigh", "show", ip, "dev", INET_DEV).stdout
    entries = json.loads(out or "[]")
    return entries[0] if entries else {}


def _stale_entries(lab: Lab) -> None:
    """Entries left by the previous owner, as a router on the uplink would hold them."""
    for ip in EGRESS:
        lab.inet.ip("neigh", "replace", ip, "lladdr", OLD_MAC, "dev", INET_DEV, "nud", "stale")
        assert _neigh(lab, ip).get("lladdr") == OLD_MAC


def _wait_owner(lab: Lab, mac: str, since: float) -> dict[str, float]:
    """Seconds from `since` until inet's entry of each egress IP shows `mac` (bounded)."""
    seen: dict[str, float] = {}
    for _ in range(int(BOUND / 0.01) + 1):
        for ip in EGRESS:
            if ip not in seen and _neigh(lab, ip).get("lladdr") == mac:
                seen[ip] = time.monotonic() - since
        if len(seen) == len(EGRESS) or time.monotonic() - since > BOUND:
            break
        time.sleep(0.01)
    entries = {ip: _neigh(lab, ip) for ip in EGRESS}
    assert set(seen) == set(EGRESS), f"not updated to {mac} within {BOUND} s: {entries}"
    return seen


def test_egress_addresses_are_announced_to_the_uplink(lab: Lab) -> None:
    new_mac = json.loads(lab.gw.ip("-j", "link", "show", UPLINK_DEV).stdout)[0]["address"]
    _stale_entries(lab)
    lab.own_ifname(ifname := new_ifname("wga"))
    lab.wggw("init")
    lab.wggw(
        "interface", "add", ifname, "--listen-port", "51820", "--endpoint", "198.51.100.1:51820"
    )
    egress = [f"--egress={ip}" for ip in EGRESS]
    pools = ("--pool=10.10.0.0/24", "--pool=fd00:a::/64")
    lab.wggw("tenant", "add", "acme", *pools, *egress, "--uplink", UPLINK_DEV)

    out = lab.wggw("apply").stdout
    seen = _wait_owner(lab, new_mac, time.monotonic())
    assert f"arping -q -U -c 2 -I {UPLINK_DEV} {EGRESS[0]}" in out, out
    assert f"advertisements for {EGRESS[1]} on {UPLINK_DEV}" in out, out
    print(f"neighbour updated after apply returned: {seen}")

    # Repair (the agent's drift repair is this same apply): the addresses went away and
    # come back, and are announced again.
    for ip in EGRESS:
        lab.gw.ip("addr", "del", f"{ip}/{128 if ':' in ip else 32}", "dev", UPLINK_DEV)
    _stale_entries(lab)
    lab.wggw("apply")
    print(f"after the repair: {_wait_owner(lab, new_mac, time.monotonic())}")
    lab.wggw("down")

"""An egress IP that is the uplink's next hop, or an address the host already has, is refused
(issue 9, defect 6): at `tenant add` when the host shows it, else at `plan`/`apply`, with one
line naming the conflict, exit 78, and nothing changed on the host."""

from __future__ import annotations

import pytest
from gwhelper import snapshot

from wggw.lab.topology import GW_UPLINK_V4, INET_V4, INET_V6, new_ifname


def _store(lab) -> None:
    lab.own_ifname(ifname := new_ifname("wge"))
    lab.wggw("init")
    lab.wggw(
        "interface", "add", ifname, "--listen-port", "51820", "--endpoint", "198.51.100.1:51820"
    )


def _add(lab, egress: str, code: int = 0):
    pool = "fd00:a::/64" if ":" in egress else "10.10.0.0/24"
    return lab.wggw(
        "tenant",
        "add",
        "acme",
        f"--pool={pool}",
        f"--egress={egress}",
        "--uplink",
        lab.uplink_dev,
        ok_codes=(code,),
    )


@pytest.mark.parametrize(
    "egress, words",
    [
        (INET_V4, ("is the IPv4 next hop of uplink uplink0",)),
        (INET_V6, ("is the IPv6 next hop of uplink uplink0",)),
        (GW_UPLINK_V4, ("is already an address of this host (on uplink0), not added by wggw",)),
    ],
)
def test_tenant_add_refuses_the_next_hop_and_host_addresses(lab, egress, words):
    _store(lab)
    res = _add(lab, egress, code=78)
    assert res.stderr.strip() == f"wggw: error: tenant acme: egress {egress} " + words[0]
    assert "acme" not in lab.wggw("tenant", "list").stdout


def test_apply_refuses_a_conflict_that_appeared_later_and_changes_nothing(lab):
    _store(lab)
    _add(lab, "203.0.113.77")
    before = snapshot(lab.gw)
    # The router moves to the egress IP: apply would put the router's address on the uplink.
    lab.gw.ip("-4", "route", "replace", "default", "via", "203.0.113.77", "dev", lab.uplink_dev)
    moved = snapshot(lab.gw)
    for cmd in (("plan", "--detailed-exitcode"), ("apply",), ("status",)):
        res = lab.wggw(*cmd, ok_codes=(78,))
        assert res.stderr.strip() == (
            "wggw: error: tenant acme: egress 203.0.113.77 is the IPv4 next hop of uplink uplink0"
        ), cmd
    assert snapshot(lab.gw) == moved
    lab.gw.ip("-4", "route", "replace", "default", "via", INET_V4, "dev", lab.uplink_dev)
    # Someone else configures the address on the host: wggw must not take it over.
    lab.gw.ip("addr", "add", "203.0.113.77/32", "dev", "lo")
    res = lab.wggw("apply", ok_codes=(78,))
    assert res.stderr.strip() == (
        "wggw: error: tenant acme: egress 203.0.113.77 is already an "
        "address of this host (on lo), not added by wggw"
    )
    lab.gw.ip("addr", "del", "203.0.113.77/32", "dev", "lo")
    assert snapshot(lab.gw) == before
    lab.wggw("apply")  # with the conflict gone, it applies
    assert "203.0.113.77/32" in lab.gw.ip("-4", "addr", "show", "dev", lab.uplink_dev).stdout
    lab.wggw("down")

"""`peer add/remove --apply` with real wireguard-go: the new client works at once without
`apply`, removal cuts it off at once, another peer's live session is untouched, and a tenant
that was never applied gets the whole `apply`."""

from __future__ import annotations

import pytest
from gwhelper import up

from wggw.lab.topology import FetchError


def test_add_apply_works_at_once_and_remove_apply_cuts_off(lab):
    gw = up(lab)
    assert gw.seen("acme", 4) == "203.0.113.10" and gw.seen("globex", 4) == "203.0.113.20"
    globex_hs = gw.handshake_of("globex/laptop")

    out = lab.wggw("peer", "add", "acme/phone", "--apply").stdout
    lines = [ln for ln in out.splitlines() if ln.startswith("[#]")]
    assert (
        len(lines) == 1
        and lines[0].startswith(f"[#] wg set {gw.ifname} peer ")
        and "1 change(s) applied." in out
    )
    lab.wggw("plan", "--detailed-exitcode")  # nothing left for `apply`
    acme = lab.client("acme")
    acme.replace_wireguard(lab.wggw("peer", "config", "acme/phone").stdout)
    assert gw.seen("acme", 4) == "203.0.113.10" and gw.seen("acme", 6) == "2001:db8:ffff::10"

    out = lab.wggw("peer", "remove", "acme/phone", "--apply").stdout
    assert f"[#] wg set {gw.ifname} peer " in out and out.rstrip().endswith("1 change(s) applied.")
    lab.wggw("plan", "--detailed-exitcode")
    with pytest.raises(FetchError):
        acme.fetch_retry("http://203.0.113.254/", attempts=3, delay=0.5, timeout=2.0)

    # The other tenant's session was never touched: same handshake, still passing traffic.
    assert gw.handshake_of("globex/laptop") == globex_hs
    assert gw.seen("globex", 4, retry=False) == "203.0.113.20"


def test_add_apply_to_a_tenant_never_applied_runs_the_whole_apply(lab):
    gw = up(lab)
    lab.wggw(
        "tenant",
        "add",
        "initech",
        "--pool",
        "10.30.0.0/24",
        "--egress",
        "203.0.113.30",
        "--uplink",
        lab.uplink_dev,
    )
    out = lab.wggw("peer", "add", "initech/desk", "--apply").stdout
    assert "ip route add 10.30.0.0/24" in out and "nft -f" in out  # routes and NAT came too
    lab.wggw("plan", "--detailed-exitcode")
    assert gw.seen("acme", 4, retry=False) == "203.0.113.10"

"""The gateway noun and the fleet CLI on every store (SQLite, sealed SQLite, PostgreSQL):
gateway add/list/show/remove, interfaces placed on gateways by priority, what each gateway
runs, lag and health from the agents' reports, `status --fleet`, the host check only for what
this host runs, and plan/apply of one gateway's part.

The reports are written here through `store.write_report`, as plain rows: the real agent
(`wggw agent --gateway`, engineer gw-agent's part) is tested end to end by tests/fleet/.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from wggw.backends.fake import FakeSystem
from wggw.core.fleet import GatewayReport, PeerReport
from wggw.ops import dataplane
from wggw.ops.state import open_existing

WG1 = ("interface", "add", "wg1", "--listen-port", "51821", "--endpoint", "vpn.example.com:51821")
BETA = ("tenant", "add", "beta", "--interface", "wg1", "--pool", "10.20.0.0/24")


def report(gateway: str, generation: int, **kw) -> GatewayReport:
    now = time.time()
    fields: dict = dict(
        healthy=True,
        error=None,
        version="9.9",
        host=f"host-{gateway}",
        pid=4242,
        started_at=now - 60,
        reported_at=now,
        converged_at=now,
    )
    fields.update(kw)
    return GatewayReport(gateway, generation, **fields)


def events(state_dir) -> list[tuple[str, str]]:
    with open_existing(state_dir) as store:
        return [(e["kind"], e["subject"]) for e in store.events()]


@pytest.fixture
def fleet(kind, gw):
    """gw (wg0 + acme on the local gateway) plus gateways gw1 and gw2, wg1 on gw1 then gw2
    (gw2 stands by), and tenant beta on wg1."""
    gw("gateway", "add", "gw1", "--uplink", "eth0", "--via", "192.0.2.254")
    gw("gateway", "add", "gw2")
    gw(*WG1, "--gateway", "gw1", "--gateway", "gw2")
    gw(*BETA, "--egress", "198.51.100.20")
    return gw


def test_gateways_are_validated_and_every_change_is_on_the_record(fleet, state_dir):
    before = events(state_dir)
    bad = [
        (("gateway", "add", "gw1"), "gw1 already exists"),
        (("gateway", "add", "1bad"), "not a safe name"),
        (
            ("gateway", "add", "gw3", "--via", "198.51.100.1", "--via", "198.51.100.2"),
            "at most one",
        ),
        (("gateway", "add", "gw3", "--via", "not-an-ip"), "not a valid IP"),
        (("gateway", "add", "gw3", "--uplink", "bad/dev"), "not a valid network device"),
        (
            (*WG1[:2], "wg2", "--listen-port", "51822", *WG1[5:], "--gateway", "gw9"),
            "no gateway named 'gw9'",
        ),
        (("interface", "set", "wg1", "--gateway", "gw1", "--gateway", "gw1"), "given twice"),
        (("interface", "set", "wg1"), "--gateway NAME"),
        (("interface", "set", "wg1", "--gateway", "gw1", "--local"), "--gateway NAME"),
        (("gateway", "remove", "gw2"), "gw2 still runs interface wg1"),
        (("gateway", "show", "gw9"), "no gateway named 'gw9'"),
    ]
    for args, words in bad:
        out = fleet(*args, code=2).output
        assert words in out and out.count("\n") == 1, (args, out)
    assert events(state_dir) == before  # nothing changed, nothing recorded
    fleet("--gateway", "gw1", "interface", "set", "wg1", "--gateway", "gw2", "--gateway", "gw1")
    wg1 = json.loads(fleet("interface", "show", "wg1", "--json").output)
    assert wg1["gateways"] == ["gw2", "gw1"]  # the order given is the priority
    last = json.loads(fleet("audit", "--json").output)[-1]
    assert last["command"] == "wggw interface set"  # the global --gateway's value skipped
    assert last["details"] == {"gateways": ["gw2", "gw1"], "before": ["gw1", "gw2"]}
    fleet("interface", "set", "wg1", "--gateway", "gw2")
    fleet("gateway", "remove", "gw1")
    assert json.loads(fleet("interface", "show", "wg0", "--json").output)["gateways"] == []
    assert [g["name"] for g in json.loads(fleet("gateway", "list", "--json").output)] == ["gw2"]
    kinds = events(state_dir)[len(before) :]
    assert kinds == [
        ("interface.set", "wg1"),
        ("interface.set", "wg1"),
        ("gateway.remove", "gw1"),
    ]
    assert ("gateway.add", "gw1") in before and ("gateway.add", "gw2") in before


def test_gateway_list_shows_what_each_runs_and_its_agents_report(fleet, state_dir):
    with open_existing(state_dir) as store:
        gen = store.generation()
        store.write_report(report("gw1", gen - 1, healthy=False, error="uplink eth0 is down"))
        store.write_report(report("gw2", gen, reported_at=time.time() - 3600))
    views = {v["name"]: v for v in json.loads(fleet("gateway", "list", "--json").output)}
    gw1, gw2 = views["gw1"], views["gw2"]
    assert (gw1["interfaces"], gw1["standby"], gw1["tenants"]) == (["wg1"], [], ["beta"])
    assert (gw2["interfaces"], gw2["standby"], gw2["tenants"]) == ([], ["wg1"], ["beta"])
    assert (gw1["uplink"], gw1["via"]) == ("eth0", ["192.0.2.254"])
    assert (gw1["health"], gw1["lag"], gw1["error"]) == ("unhealthy", 1, "uplink eth0 is down")
    assert (gw2["health"], gw2["lag"], gw2["generation"]) == ("stale", 0, gen)
    assert gw2["report_age_seconds"] >= 3599 and gw1["version"] == "9.9"
    assert gw1["store_generation"] == gen and gw1["host"] == "host-gw1"
    text = fleet("gateway", "list").output.splitlines()
    assert text[0].split()[:4] == ["NAME", "INTERFACES", "TENANTS", "HEALTH"]
    assert text[1].split()[:5] == ["gw1", "wg1", "1", "unhealthy", str(gen - 1)]
    assert "wg1 (standby)" in text[2] and "stale" in text[2]
    fleet("gateway", "add", "gw3")
    gw3 = json.loads(fleet("gateway", "show", "gw3", "--json").output)
    assert (gw3["health"], gw3["lag"], gw3["tenants"]) == ("missing", None, [])
    fleet("gateway", "remove", "gw3")
    assert "no gateway named 'gw3'" in fleet("gateway", "show", "gw3", code=2).output


def test_status_fleet_aggregates_gateways_and_peers_from_the_store_alone(fleet, state_dir):
    fleet("peer", "add", "beta/ann", "beta/bob")
    peers = {p["name"]: p for p in json.loads(fleet("peer", "list", "--json").output)}
    ann, bob = peers["ann"]["public_key"], peers["bob"]["public_key"]
    now = time.time()
    with open_existing(state_dir) as store:
        gen = store.generation()
        store.write_report(
            report("gw1", gen),
            [
                PeerReport("gw1", ann, "198.51.100.7:4000", now - 500, 100, 200, now),
                PeerReport("gw1", bob, None, None, 0, 0, now),
            ],
        )
        # ann moved over to the standby: its newer handshake there wins, bytes add up
        store.write_report(
            report("gw2", gen), [PeerReport("gw2", ann, "198.51.100.8:4001", now - 5, 1, 2, now)]
        )
    out = json.loads(fleet("status", "--fleet", "--json").output)
    assert out["generation"] == gen and out["converged"] is True
    got = {p["name"]: p for p in out["peers"]}
    assert (got["ann"]["gateway"], got["ann"]["endpoint"]) == ("gw2", "198.51.100.8:4001")
    assert (got["ann"]["rx_bytes"], got["ann"]["tx_bytes"], got["ann"]["active"]) == (
        101,
        202,
        True,
    )
    assert got["ann"]["reported_by"] == ["gw1", "gw2"]
    assert (got["bob"]["gateway"], got["bob"]["latest_handshake"], got["bob"]["active"]) == (
        None,
        None,
        False,
    )
    tenants = {t["name"]: t for t in out["tenants"]}
    assert tenants["beta"]["gateways"] == ["gw1", "gw2"] and tenants["acme"]["gateways"] == []
    assert (tenants["beta"]["peers"], tenants["beta"]["active_peers"]) == (2, 1)
    fleet("peer", "add", "beta/cat")  # a commit no gateway has applied yet
    out = json.loads(fleet("status", "--fleet", "--json").output)
    assert out["converged"] is False and {g["lag"] for g in out["gateways"]} == {1}
    text = fleet("status", "--fleet").output
    assert "NOT converged" in text and "198.51.100.8:4001" in text
    assert "about this host" in fleet("status", "--fleet", "--check", code=2).output


def _host_address() -> str | None:
    """A global IPv4 address of this host (the host check refuses it as an egress)."""
    out = subprocess.run(["ip", "-4", "-j", "addr"], capture_output=True, text=True, check=True)
    for link in json.loads(out.stdout):
        for a in link.get("addr_info", []):
            if a.get("scope") == "global" and not a["local"].startswith("127."):
                return a["local"]
    return None


def test_the_host_is_checked_only_for_tenants_it_runs(fleet, cli, state_dir):
    addr = _host_address()
    if addr is None:
        pytest.skip("this host has no global IPv4 address to collide with")
    pool = ("--pool", "10.30.0.0/24", "--egress", addr)
    # one gateway: on two, wg1's egress addresses would float (keepalived's: no host check)
    fleet("interface", "set", "wg1", "--gateway", "gw1")
    # on the local gateway (wg0): this host runs it, its address is refused (exit 78)
    out = fleet("tenant", "add", "t1", "--interface", "wg0", *pool, code=78).output
    assert addr in out
    # placed on gw1: not this host's to check, accepted
    fleet("tenant", "add", "t2", "--interface", "wg1", *pool)
    fleet("tenant", "remove", "t2")
    # on gateway gw1's host (--gateway gw1) the same tenant is this host's again
    out = cli("--gateway", "gw1", "tenant", "add", "t3", "--interface", "wg1", *pool, code=78)
    assert addr in out.output
    names = [t["name"] for t in json.loads(fleet("tenant", "list", "--json").output)]
    assert names == ["acme", "beta"]


def test_apply_and_plan_on_a_gateway_act_on_its_part_only(fleet, cli, state_dir):
    fleet("peer", "add", "acme/alice", "beta/ann")
    with open_existing(state_dir) as store:
        fake = FakeSystem(links=("eth0", "eth1"))
        dataplane.apply(store, system=fake, gateway="gw1")
        assert set(fake.state.wg) == {"wg1"}  # beta's interface only; acme (local) is not here
        peers = fake.state.wg["wg1"].peers
        assert len(peers) == 1
        egress = {(a.ifname, a.cidr.split("/")[0]) for a in fake.state.addresses if a.egress}
        # wg1 is on gw1 and gw2: beta's egress floats (keepalived holds it, wggw adds none)
        assert egress == set()
        # the gateway's via is beta's next hop there (no via of its own)
        assert any(r.gateway == "192.0.2.254" for r in fake.state.routes if r.dst == "default")
        local = FakeSystem()
        dataplane.apply(store, system=local)  # no --gateway: what is placed on no gateway
        assert set(local.state.wg) == {"wg0"}
        # `rotate` converges the same part after rotating in the store
        from wggw.ops import rotation

        for gateway, wanted in ((None, {"wg0"}), ("gw2", {"wg1"})):
            host = FakeSystem()
            rotation.rotate(store, host, time.time(), older_than=0, grace=0, selected=None,
                            out=None, notify=None, dry_run=False, gateway=gateway)  # fmt: skip
            assert set(host.state.wg) == wanted
    out = cli("--gateway", "gw9", "plan", code=2).output
    assert "no gateway named 'gw9'" in out


def test_apply_on_a_gateway_holds_its_lock_not_the_store_lock(
    pg_url, key_file, monkeypatch, cli, state_dir
):
    """On PostgreSQL `--gateway gw1 apply` holds gw1's lock (the one gw1's agent rounds hold),
    not the store's command lock: operators elsewhere go on meanwhile. Without --gateway it
    holds the command lock as before. Each seen from a second session while apply runs."""
    from wggw.core.errors import LockBusyError

    monkeypatch.setenv("WGGW_DB", pg_url)
    cli("init")
    cli("gateway", "add", "gw1")
    cli(*WG1, "--gateway", "gw1")
    cli("interface", "add", "wg0", "--listen-port", "51820", "--endpoint", "vpn.example.com:1")
    seen: list[tuple[str, bool]] = []

    class Probe(FakeSystem):
        def apply(self, changes, echo=None) -> None:
            for what, lock in (("store", other.locked), ("gw1", gateway_lock)):
                try:
                    with lock(timeout=0.2):
                        seen.append((what, True))
                except LockBusyError:
                    seen.append((what, False))
            super().apply(changes, echo)

    with open_existing(state_dir) as store, open_existing(state_dir) as other:

        def gateway_lock(timeout: float):
            return other.gateway_locked("gw1", timeout)

        dataplane.apply(store, system=Probe(), gateway="gw1")
        assert seen and set(seen) == {("store", True), ("gw1", False)}
        seen.clear()
        dataplane.apply(store, system=Probe())  # the local part (wg0): the command lock
        assert seen and set(seen) == {("store", False), ("gw1", True)}


def test_gateway_set_changes_its_tenants_defaults(fleet, state_dir):
    for args, words in (
        ((), "give --uplink and/or --via"),
        (("--via", "nope"), "not a valid IP"),
        (("--uplink", "a b"), "not a valid network device"),
        (("--via", "198.51.100.1", "--via", "198.51.100.2"), "at most one"),
    ):
        assert words in fleet("gateway", "set", "gw1", *args, code=2).output
    assert "no gateway named" in fleet("gateway", "set", "gw9", "--uplink", "x", code=2).output
    view = json.loads(
        fleet("gateway", "set", "gw1", "--uplink", "eth9", "--via", "2001:db8::1", "--json").output
    )
    assert (view["uplink"], view["via"]) == ("eth9", ["2001:db8::1"])
    view = json.loads(fleet("gateway", "set", "gw1", "--via", "default", "--json").output)
    assert (view["uplink"], view["via"]) == ("eth9", [])
    view = json.loads(fleet("gateway", "set", "gw1", "--uplink", "default", "--json").output)
    assert (view["uplink"], view["via"]) == (None, [])
    assert [k for k, s in events(state_dir) if s == "gw1"][-3:] == ["gateway.set"] * 3
    with open_existing(state_dir) as store:  # what gw1's agent would apply: the new defaults
        from wggw.core.placement import on_gateway

        beta = on_gateway(store.load(), "gw1").tenants[0]
    assert (beta.uplink, beta.via) == (None, ())

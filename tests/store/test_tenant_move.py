"""`tenant move` and `peer add/remove --apply` on a fleet, on every store: they wait on the
agents' reports (ops/fleetwait.py) and time out with one line; a move's target must report
the tenant built before the old gateways release it, and a timeout rolls the move back.

The reports come from `Reporter`, a thread that writes them through `store.write_report` as
plain rows, the way an agent does after a round: the real agent (`wggw agent --gateway`,
gw-agent's part) is exercised end to end by the fleet netns test (tests/fleet/).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from wggw.core.fleet import GatewayReport
from wggw.core.placement import on_gateway
from wggw.ops.state import open_existing

SCALE = float(os.environ.get("WGGW_TIME_SCALE", "1"))
WG1 = ("interface", "add", "wg1", "--listen-port", "51821", "--endpoint", "vpn.example.com:51821")


class Reporter(threading.Thread):
    """Reports for gateway `name` what an agent would: every store generation it sees, once
    its part of the state (on_gateway) holds the tenants in `builds` (healthy unless
    `error`). Records which gateways held `watch` at each generation it saw."""

    def __init__(self, state_dir: Path, name: str, builds=(), error=None, watch="beta"):
        super().__init__(daemon=True, name=f"reporter-{name}")
        self.state_dir, self.name_, self.builds, self.error = state_dir, name, set(builds), error
        self.watch = watch
        self.stop = threading.Event()
        # (time, generation, gateways holding `watch`) of every round; the rounds it reported
        self.seen: list[tuple[float, int, frozenset[str]]] = []
        self.reported: list[tuple[float, int, frozenset[str]]] = []
        self.failed: BaseException | None = None

    def run(self) -> None:
        try:
            with open_existing(self.state_dir) as store:
                deadline = time.monotonic() + 60 * SCALE  # bounded, whatever the test does
                while not self.stop.is_set() and time.monotonic() < deadline:
                    self._round(store)
                    self.stop.wait(0.02)
        except BaseException as e:  # reported to the test by `reporting`
            self.failed = e

    def _round(self, store) -> None:
        gen = store.generation()  # before the load: the state is at least this new
        state = store.load()
        mine = {t.name for t in on_gateway(state, self.name_).tenants}
        holders = frozenset(
            g.name
            for g in state.gateways
            if self.watch in {t.name for t in on_gateway(state, g.name).tenants}
        )
        now = time.time()
        self.seen.append((now, gen, holders))
        if not self.builds <= mine:
            return
        store.write_report(
            GatewayReport(
                self.name_,
                gen,
                self.error is None,
                self.error,
                "test",
                "h",
                os.getpid(),
                now - 1,
                now,
                now,
            )
        )
        self.reported.append(self.seen[-1])


@contextmanager
def reporting(*reporters: Reporter) -> Iterator[None]:
    for r in reporters:
        r.start()
    try:
        yield
    finally:
        for r in reporters:
            r.stop.set()
            r.join(10)
        for r in reporters:
            assert r.failed is None, r.failed


@pytest.fixture
def fleet(kind, gw):
    gw("gateway", "add", "gw1")
    gw("gateway", "add", "gw2")
    gw(*WG1, "--gateway", "gw1")
    gw(
        "tenant",
        "add",
        "beta",
        "--interface",
        "wg1",
        "--pool",
        "10.20.0.0/24",
        "--egress",
        "198.51.100.20",
    )
    gw("peer", "add", "beta/ann")
    return gw


def kinds(state_dir: Path, subject: str) -> list[str]:
    with open_existing(state_dir) as store:
        return [e["kind"] for e in store.events(subject)]


def tenant(cli, name: str) -> dict:
    return json.loads(cli("tenant", "show", name, "--json").output)


def test_move_waits_for_the_target_then_the_old_gateway_releases(fleet, state_dir):
    gw1 = Reporter(state_dir, "gw1")
    gw2 = Reporter(state_dir, "gw2", builds={"beta"})
    with reporting(gw1, gw2):
        out = fleet("tenant", "move", "beta", "--to", "gw2", "--timeout", str(30 * SCALE)).output
        assert "moved tenant beta to gw2 in" in out and "gw1 release(s) it" in out
    t = tenant(fleet, "beta")
    assert (t["gateway"], t["moving_to"]) == ("gw2", None)
    assert kinds(state_dir, "beta")[-2:] == ["tenant.move.begin", "tenant.move"]
    with open_existing(state_dir) as store:
        state = store.load()
    assert [x.name for x in on_gateway(state, "gw1").tenants] == []  # released
    assert [x.name for x in on_gateway(state, "gw2").tenants] == ["beta"]
    # The old gateway released it only after the target had reported it built.
    built = min(at for at, _, _ in gw2.reported)
    with open_existing(state_dir) as store:
        moved = [e["at"] for e in store.events("beta") if e["kind"] == "tenant.move"][-1]
    assert moved >= built
    assert all("gw1" in holders for at, _, holders in gw1.seen if at < built)
    assert "runs on gw2 already" in fleet("tenant", "move", "beta", "--to", "gw2").output


def test_a_target_that_does_not_build_it_in_time_rolls_the_move_back(fleet, state_dir):
    sick = Reporter(state_dir, "gw2", builds={"beta"}, error="uplink eth1 is down")
    with reporting(sick):
        r = fleet("tenant", "move", "beta", "--to", "gw2", "--timeout", str(1 * SCALE), code=1)
    err = r.output.splitlines()[-1]
    assert err.startswith("wggw: error: tenant move of beta to gw2")
    assert "uplink eth1 is down" in err and "rolled back" in err
    t = tenant(fleet, "beta")
    assert (t["gateway"], t["moving_to"]) == (None, None)
    assert kinds(state_dir, "beta")[-2:] == ["tenant.move.begin", "tenant.move.abort"]
    # no agent ever reported: the line says which one to start
    fleet("gateway", "add", "gw3")
    r = fleet("tenant", "move", "beta", "--to", "gw3", "--timeout", "0.3", code=1)
    assert "no report: is `wggw agent --gateway gw3` running?" in r.output


def test_move_refusals_change_nothing(fleet, state_dir):
    before = kinds(state_dir, "beta")
    assert "no gateway named 'gw9'" in fleet("tenant", "move", "beta", "--to", "gw9", code=2).output
    out = fleet("tenant", "move", "acme", "--to", "gw2", code=2).output
    assert "runs on no named gateway" in out and "interface set wg0 --gateway" in out
    assert (
        "seconds" in fleet("tenant", "move", "beta", "--to", "gw2", "--timeout", "0", code=2).output
    )
    with open_existing(state_dir) as store, store.transaction() as tx:
        from dataclasses import replace

        tx.update_tenant(replace(tx.tenant("beta"), moving_to="gw1"))
    assert "already moving to gw1" in fleet("tenant", "move", "beta", "--to", "gw2", code=2).output
    assert "are moving" in fleet("interface", "set", "wg1", "--gateway", "gw2", code=2).output
    assert "still runs" in fleet("gateway", "remove", "gw1", code=2).output
    assert kinds(state_dir, "beta") == before


def test_peer_apply_on_a_fleet_waits_for_every_gateway_holding_the_tenant(
    fleet, state_dir, monkeypatch
):
    fleet("interface", "set", "wg1", "--gateway", "gw1", "--gateway", "gw2")
    with reporting(Reporter(state_dir, "gw1"), Reporter(state_dir, "gw2")):
        out = fleet("peer", "add", "beta/bob", "--apply").output
        assert "applied on gw1, gw2" in out
        out = fleet("peer", "remove", "beta/bob", "--apply").output
        assert "removed peer beta/bob" in out and "applied on gw1, gw2" in out
        out = fleet("peer", "add", "beta/b-{1..3}", "--apply", "--json")
        assert len(json.loads(out.stdout)) == 3  # the waiting went to stderr
    monkeypatch.setenv("WGGW_FLEET_TIMEOUT", str(0.5 * SCALE))
    with reporting(Reporter(state_dir, "gw1")):  # gw2's agent is gone
        r = fleet("peer", "add", "beta/cat", "--apply", code=1)
    err = r.output.splitlines()[-1]
    assert "the peer change" in err and "gw2 (generation" in err and "gw1" not in err
    assert "beta/cat" in fleet("peer", "list").output  # committed; gw2 applies it on return
    monkeypatch.setenv("WGGW_FLEET_TIMEOUT", "soon")
    assert "WGGW_FLEET_TIMEOUT" in fleet("peer", "add", "beta/dan", "--apply", code=2).output
    assert "beta/dan" not in fleet("peer", "list").output  # refused before any write


def test_each_phase_as_the_gateways_apply_it(fleet, state_dir):
    """The data plane of each gateway through a move (the fake host of each, applied with
    --gateway as its agent does): the target builds the tenant in phase 1 while the old
    gateway keeps it, and only phase 2 takes it off the old one."""
    from wggw.backends.fake import FakeSystem
    from wggw.ops import dataplane, tenantmove

    hosts = {"gw1": FakeSystem(), "gw2": FakeSystem()}

    def egress() -> dict[str, set[str]]:
        with open_existing(state_dir) as store:
            for name, host in hosts.items():
                dataplane.apply(store, system=host, gateway=name)
        return {
            name: {a.cidr.split("/")[0] for a in h.state.addresses if a.egress}
            for name, h in hosts.items()
        }

    assert egress() == {"gw1": {"198.51.100.20"}, "gw2": set()}
    with open_existing(state_dir) as store:
        assert tenantmove._begin(store, "beta", "gw2") == ("gw1",)
    both = egress()
    assert both == {"gw1": {"198.51.100.20"}, "gw2": {"198.51.100.20"}}
    assert set(hosts["gw2"].state.wg) == {"wg1"} and len(hosts["gw2"].state.wg["wg1"].peers) == 1
    with open_existing(state_dir) as store:
        tenantmove._finish(store, "beta", "gw2", ("gw1",))
    assert egress() == {"gw1": set(), "gw2": {"198.51.100.20"}}
    assert set(hosts["gw1"].state.wg) == {"wg1"}  # the interface stays on gw1, empty
    assert hosts["gw1"].state.wg["wg1"].peers == {}


def test_ctrl_c_while_waiting_rolls_the_move_back(fleet, state_dir):
    from wggw.ops import tenantmove

    def interrupted(line: str) -> None:  # called once phase 1 is committed
        raise KeyboardInterrupt

    with open_existing(state_dir) as store, pytest.raises(KeyboardInterrupt):
        tenantmove.move_tenant(store, "beta", "gw2", 30, interrupted)
    t = tenant(fleet, "beta")
    assert (t["gateway"], t["moving_to"]) == (None, None)
    assert kinds(state_dir, "beta")[-2:] == ["tenant.move.begin", "tenant.move.abort"]

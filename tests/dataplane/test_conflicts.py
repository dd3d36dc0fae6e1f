"""Egress IPs that conflict with the host (issue 9, defect 6): refused with one line naming
the conflict, exit 78, before anything is planned or stored."""

from __future__ import annotations

import ipaddress as ip

import pytest

from wggw.backends.fake import FakeSystem
from wggw.core import conflicts, naming
from wggw.core.desired import compile_state
from wggw.core.errors import EXIT_HOST_CONFLICT, HostConflictError
from wggw.core.hostfacts import DefaultRoute, HostFacts
from wggw.core.model import State, Tenant
from wggw.ops import converge as reconcile

FACTS = HostFacts(
    {4: DefaultRoute("eth0", "192.0.2.254"), 6: DefaultRoute("eth0", "2001:db8::fe")},
    frozenset({"192.0.2.1", "2001:db8::1"}),
    frozenset({"eth0", "eth1"}),
    foreign_devs={"192.0.2.1": "eth0", "2001:db8::1": "eth0"},
)


def tenant(*egress: str, uplink=None, via=()) -> Tenant:
    return Tenant(
        "acme",
        "wg0",
        (ip.ip_network("10.10.0.0/24"), ip.ip_network("fd00:10::/64")),
        tuple(ip.ip_address(e) for e in egress),
        naming.TABLE_MIN,
        uplink,
        tuple(ip.ip_address(v) for v in via),
    )


@pytest.mark.parametrize(
    "egress, words",
    [
        (("192.0.2.254",), ("192.0.2.254", "IPv4 next hop", "eth0")),
        (("203.0.113.10", "2001:db8:0::00fe"), ("2001:db8::fe", "IPv6 next hop", "eth0")),
        (
            ("192.0.2.1",),
            ("192.0.2.1", "already an address of this host", "on eth0", "not added by wggw"),
        ),
        (("203.0.113.10", "2001:db8::1"), ("2001:db8::1", "already")),
    ],
)
def test_conflicting_egress_is_named(egress, words):
    problem = conflicts.egress_conflict(tenant(*egress), FACTS)
    assert problem is not None and all(w in problem for w in words), problem


def test_the_next_hop_is_the_tenants_own_via_on_its_own_uplink():
    assert "next hop of uplink eth1" in conflicts.egress_conflict(
        tenant("203.0.113.9", uplink="eth1", via=("203.0.113.9",)), FACTS
    )
    # main's gateway is not the next hop of another uplink
    assert conflicts.egress_conflict(tenant("192.0.2.254", uplink="eth1"), FACTS) is None
    assert conflicts.egress_conflict(tenant("203.0.113.10", "2001:db8::10"), FACTS) is None


def test_plan_refuses_before_anything_and_the_exit_code_is_documented():
    fake = FakeSystem()
    state = State((), (tenant("192.0.2.254"),), ())
    with pytest.raises(HostConflictError) as err:
        reconcile.converge(state, fake)
    assert err.value.exit_code == EXIT_HOST_CONFLICT == 78
    assert str(err.value) == "tenant acme: egress 192.0.2.254 is the IPv4 next hop of uplink eth0"
    assert fake.log == []  # nothing was applied
    with pytest.raises(HostConflictError):
        compile_state(state, FACTS)


def test_tenant_add_refuses_a_conflict_it_can_see_and_stores_nothing(gw, monkeypatch):
    from wggw.backends.netlink import rtnl

    monkeypatch.setattr(rtnl, "observe_facts", lambda: FACTS)
    res = gw(
        "tenant", "add", "globex", "--pool", "10.20.0.0/24", "--egress", "192.0.2.254", code=78
    )
    assert res.output.strip().splitlines() == [
        "wggw: error: tenant globex: egress 192.0.2.254 is the IPv4 next hop of uplink eth0"
    ]
    assert "globex" not in gw("tenant", "list").output
    gw("tenant", "add", "globex", "--pool", "10.20.0.0/24", "--egress", "203.0.113.20")


def test_tenant_add_goes_on_when_the_host_cannot_be_read(gw, monkeypatch):
    from wggw.backends.netlink import rtnl
    from wggw.core.errors import BackendError

    def unreadable():
        raise BackendError("netlink: not here")

    monkeypatch.setattr(rtnl, "observe_facts", unreadable)
    gw("tenant", "add", "globex", "--pool", "10.20.0.0/24", "--egress", "192.0.2.254")

"""The plan's order is sorted order: `plan.ordered` sorts routes, rules, addresses and tc
filters by the fields their dataclass compares, as `sorted` does with the generated __lt__
(only faster), and a route slot held by an unwanted route is still replaced in place."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from wggw.core.desired import AddrSpec, RouteSpec, empty
from wggw.core.plan import AddRoute, DelRoute, Observed, ordered, plan
from wggw.core.ruletree import RuleSpec

names = st.sampled_from(["wg0", "wg1", "eth0", "eth1"])
routes = st.builds(
    RouteSpec,
    family=st.sampled_from([4, 6]),
    table=st.integers(1000, 1003),
    dst=st.sampled_from(["default", "10.0.0.0/24", "10.0.1.0/24"]),
    dev=names,
    gateway=st.sampled_from(["192.0.2.1", "192.0.2.2"]),
    src=st.sampled_from(["198.51.100.1", "198.51.100.2"]),
    metric=st.sampled_from([0, 100]),
    extra=st.sampled_from([(), (("proto", "static"),)]),
)
rules = st.builds(
    RuleSpec,
    family=st.sampled_from([4, 6]),
    pref=st.integers(100, 110),
    action=st.sampled_from(["lookup", "goto", "unreachable"]),
    fwmark=st.integers(0, 3),
    fwmask=st.integers(0, 3),
    table=st.integers(0, 3),
    goto=st.integers(0, 3),
    iif=st.sampled_from(["", "wg0"]),
)
addresses = st.builds(
    AddrSpec,
    ifname=names,
    cidr=st.sampled_from(["10.0.0.1/24", "192.0.2.7/32", "2001:db8::1/128"]),
    egress=st.booleans(),
)


@given(st.frozensets(routes) | st.frozensets(rules) | st.frozensets(addresses))
def test_ordered_is_sorted(items) -> None:
    assert ordered(items) == sorted(items)


@given(st.frozensets(routes, max_size=12), st.frozensets(routes, max_size=12))
def test_routes_plan_as_a_full_comparison_would(want, have) -> None:
    """Each wanted route missing is added (replacing its slot when something else holds it);
    each route present and not wanted, and not replaced that way, is deleted; in order."""
    changes = plan(replace(empty(), routes=want), Observed(routes=have))
    adds = [c for c in changes if isinstance(c, AddRoute)]
    dels = [c for c in changes if isinstance(c, DelRoute)]

    def slot(r: RouteSpec):
        return (r.family, r.table, r.dst, r.metric)

    assert [a.spec for a in adds] == sorted(want - have)
    for a in adds:
        held = [r for r in have if slot(r) == slot(a.spec)]
        assert a.replace == bool(held)
    replaced = {
        held[0] for a in adds if len(held := [r for r in have if slot(r) == slot(a.spec)]) == 1
    }
    assert [d.spec for d in dels] == sorted(r for r in have - want if r not in replaced)

"""Address and table allocation (pure)."""

from __future__ import annotations

import ipaddress
import time

import pytest

from wggw.core import alloc, naming
from wggw.core.errors import ValidationError
from wggw.core.model import Peer, RetiringKey, State, Tenant

ip = ipaddress.ip_address
iface = ipaddress.ip_interface


def tenant(*pools: str, name: str = "t", table: int = naming.TABLE_MIN) -> Tenant:
    return Tenant(
        name=name,
        interface="wg0",
        pools=tuple(ipaddress.ip_network(p) for p in pools),
        egress=(),
        table=table,
    )


def peer(name: str, *addrs: str, retiring: tuple[str, ...] = ()) -> Peer:
    r = RetiringKey("k" + name, None, tuple(iface(a) for a in retiring), 0.0) if retiring else None
    return Peer(
        tenant="t",
        name=name,
        public_key=name,
        addresses=tuple(iface(a) for a in addrs),
        key_created_at=0.0,
        retiring=r,
    )


def test_first_peer_skips_network_and_gateway():
    t = tenant("10.0.0.0/24", "fd00::/64")
    assert alloc.allocate(State(tenants=(t,)), t) == (iface("10.0.0.2/32"), iface("fd00::2/128"))


def test_lowest_free_and_retiring_addresses_are_used():
    t = tenant("10.0.0.0/24")
    state = State(
        tenants=(t,),
        peers=(peer("a", "10.0.0.2/32"), peer("b", "10.0.0.4/32", retiring=("10.0.0.3/32",))),
    )
    assert alloc.allocate(state, t) == (iface("10.0.0.5/32"),)
    state = State(tenants=(t,), peers=(peer("a", "10.0.0.3/32"),))
    assert alloc.allocate(state, t) == (iface("10.0.0.2/32"),)


def test_broadcast_is_never_given_and_full_pool_errors():
    t = tenant("10.0.0.0/29")  # .2 .. .6 assignable
    peers = tuple(peer(f"p{i}", f"10.0.0.{i}/32") for i in range(2, 7))
    assert alloc.next_free(t.pools[0], {p.addresses[0].ip for p in peers[:-1]}) == ip("10.0.0.6")
    with pytest.raises(ValidationError) as e:
        alloc.allocate(State(tenants=(t,), peers=peers), t)
    assert e.value.field == "pool" and "no free address left" in str(e.value)


def test_ipv6_slash64_is_o_of_peers():
    pool = ipaddress.ip_network("fd00:1::/64")
    used = {pool.network_address + i for i in range(2, 2002)}
    start = time.perf_counter()
    assert alloc.next_free(pool, used) == pool.network_address + 2002
    assert time.perf_counter() - start < 0.5


def test_ipv6_small_pool_full():
    pool = ipaddress.ip_network("fd00::/126")  # ::0 network, ::1 gateway, ::2, ::3
    assert alloc.next_free(pool, {ip("fd00::2")}) == ip("fd00::3")
    assert alloc.next_free(pool, {ip("fd00::2"), ip("fd00::3")}) is None


def test_check_requested():
    t = tenant("10.0.0.0/24", "fd00::/64")
    state = State(tenants=(t,), peers=(peer("a", "10.0.0.2/32"),))
    assert alloc.check_requested(state, t, iface("10.0.0.9/32")) == iface("10.0.0.9/32")
    for bad, problem in [
        ("10.0.0.2/32", "already used"),
        ("10.0.1.2/32", "outside the pools"),
        ("10.0.0.1/32", "gateway"),
        ("10.0.0.255/32", "broadcast"),
        ("10.0.0.0/24", "single host"),
        ("fd01::5/128", "outside the pools"),
    ]:
        with pytest.raises(ValidationError, match=problem):
            alloc.check_requested(state, t, iface(bad))


def test_next_table_is_lowest_free_and_bounded():
    ts = (
        tenant("10.0.0.0/24", name="a", table=naming.TABLE_MIN),
        tenant("10.1.0.0/24", name="b", table=naming.TABLE_MIN + 2),
    )
    assert alloc.next_table(State(tenants=ts)) == naming.TABLE_MIN + 1
    full = tuple(
        tenant("10.0.0.0/24", name=f"t{i}", table=i)
        for i in range(naming.TABLE_MIN, naming.TABLE_MAX + 1)
    )
    with pytest.raises(ValidationError, match="in use"):
        alloc.next_table(State(tenants=full))

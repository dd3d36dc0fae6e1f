"""The rotation policy with the clock passed in: due/not due, per-tenant policy, own-key
peers, grace (handshake or time), expiry, one rotation at a time."""

import ipaddress as ip

from wggw.core import keys, naming
from wggw.core import rotate as policy
from wggw.core.model import Peer, RetiringKey, State, Tenant

DAY = 86400
NOW = 1_800_000_000.0


def tenant(name="acme", rotate_after=None):
    return Tenant(
        name,
        "wg0",
        (ip.ip_network("10.1.0.0/24"),),
        (ip.ip_address("203.0.113.1"),),
        naming.TABLE_MIN,
        rotate_after=rotate_after,
    )


def peer(name="p", age_days=0.0, own_key=False, retiring=None, expires_at=None, t="acme"):
    priv, pub = keys.keypair()
    created = NOW - age_days * DAY
    return Peer(
        t,
        name,
        pub,
        (ip.ip_interface("10.1.0.2/32"),),
        created,
        None if own_key else priv,
        None if own_key else keys.generate_psk(),
        expires_at=expires_at,
        created_at=created - DAY,
        retiring=retiring,
    )


def retiring(retire_at):
    _, pub = keys.keypair()
    return RetiringKey(pub, keys.generate_psk(), (ip.ip_interface("10.1.0.3/32"),), retire_at)


def test_due_by_default_policy_only_after_90_days():
    young, old = peer("young", 89), peer("old", 91)
    d = policy.decide(State(tenants=(tenant(),), peers=(young, old)), NOW, {})
    assert [p.name for p in d.rotate] == ["old"]


def test_older_than_overrides_and_tenant_policy_applies():
    p = peer("p", 10)
    st = State(tenants=(tenant(rotate_after=7 * DAY),), peers=(p,))
    assert policy.decide(st, NOW, {}).rotate == [p]
    assert policy.decide(st, NOW, {}, older_than=30 * DAY).rotate == []
    assert policy.decide(State(tenants=(tenant(),), peers=(p,)), NOW, {}).rotate == []


def test_own_key_peers_are_reported_not_rotated():
    p = peer("byok", 200, own_key=True)
    d = policy.decide(State(tenants=(tenant(),), peers=(p,)), NOW, {})
    assert d.rotate == [] and d.own_key == [p]


def test_grace_retires_on_new_key_handshake_or_time():
    waiting = peer("w", 1, retiring=retiring(NOW + DAY))
    assert not policy.should_retire(waiting, NOW, {})
    # a handshake of the new key made after the rotation retires the old key early
    assert policy.should_retire(waiting, NOW, {waiting.public_key: NOW - 10})
    # a handshake older than the new key does not count
    assert not policy.should_retire(waiting, NOW, {waiting.public_key: waiting.key_created_at - 1})
    # the end of the grace period retires it whatever happened
    assert policy.should_retire(waiting, NOW + DAY, {})


def test_one_rotation_at_a_time():
    p = peer("p", 100, retiring=retiring(NOW + DAY))
    d = policy.decide(State(tenants=(tenant(),), peers=(p,)), NOW, {}, older_than=0)
    assert d.rotate == [] and d.in_grace == [p]
    # once its old key retires, it may rotate again in the same run
    d = policy.decide(State(tenants=(tenant(),), peers=(p,)), NOW + 2 * DAY, {}, older_than=0)
    assert d.retire == [p] and d.rotate == [p]


def test_expired_peers_are_removed_and_not_rotated():
    gone, kept = peer("gone", 200, expires_at=NOW - 1), peer("kept", 1, expires_at=NOW + 60)
    d = policy.decide(State(tenants=(tenant(),), peers=(gone, kept)), NOW, {})
    assert d.expire == [gone] and d.rotate == []
    assert policy.housekeeping(State(peers=(gone, kept)), NOW, {}).expire == [gone]


def test_selection_limits_rotation():
    a, b = peer("a", 100), peer("b", 100)
    d = policy.decide(State(tenants=(tenant(),), peers=(a, b)), NOW, {}, selected={"acme/b"})
    assert d.rotate == [b]

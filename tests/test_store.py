"""The SQLite store: round trips, private files, transactions, migrations, the lock."""

from __future__ import annotations

import fcntl
import ipaddress
import os
import sqlite3
import stat
import time
from dataclasses import replace

import pytest
from wggwtest import dump, run_wggw

from wggw.core import keys
from wggw.core.errors import LockBusyError, NotFoundError, StoreError
from wggw.core.model import RetiringKey
from wggw.ops import objects
from wggw.store.sqlite import SCHEMA_VERSION, StoreMissingError, open_store


@pytest.fixture
def store(state_dir):
    objects.init(state_dir)
    with open_store(state_dir) as s:
        objects.add_interface(s, "wg0", 51820, "192.0.2.1:51820", 1420)
        objects.add_tenant(
            s,
            "acme",
            ["10.10.0.0/24", "fd00:10::/64"],
            ["203.0.113.10", "2001:db8::10"],
            uplink="eth0",
            via=["203.0.113.1"],
            rotate_after="30d",
        )
        yield s


def _modes(path):
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.iterdir()}


def test_round_trip_of_every_field(store):
    peer = objects.add_peer(
        store, "acme/alice", keepalive=25, dns=["9.9.9.9,2620:fe::fe"], expires="30d"
    )
    state = store.load()
    assert state.peers == (peer,)
    assert state.interfaces[0].mtu == 1420 and isinstance(
        state.interfaces[0].private_key, keys.Secret
    )
    t = state.tenants[0]
    assert (t.uplink, t.via, t.rotate_after, t.table) == (
        "eth0",
        (ipaddress.ip_address("203.0.113.1"),),
        30 * 86400,
        60000,
    )
    assert peer.psk is not None and keys.public_of(peer.private_key) == peer.public_key


def test_update_peer_persists_retiring_key(store):
    peer = objects.add_peer(store, "acme/alice")
    new_private = keys.generate_private()
    retiring = RetiringKey(peer.public_key, peer.psk, peer.addresses, time.time() + 3600)
    rotated = replace(
        peer,
        private_key=new_private,
        public_key=keys.public_of(new_private),
        addresses=(ipaddress.ip_interface("10.10.0.3/32"),),
        retiring=retiring,
    )
    with store.transaction() as tx:
        tx.update_peer(rotated)
        tx.record_event("peer.rotate", rotated.ref, {"old": keys.fingerprint(peer.public_key)})
    assert store.load().peers == (rotated,)
    # the retiring key's address stays taken
    assert objects.add_peer(store, "acme/bob").addresses[0] == ipaddress.ip_interface(
        "10.10.0.4/32"
    )
    assert [e["kind"] for e in store.events("acme/alice")] == ["peer.add", "peer.rotate"]


def test_unknown_objects_raise_not_found(store):
    with pytest.raises(NotFoundError), store.transaction() as tx:
        tx.remove_peer("acme", "nobody")


def test_failed_transaction_leaves_state_intact(store, state_dir):
    before = dump(state_dir)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.set_meta("x", "1")
        tx.remove_tenant("acme")
        raise RuntimeError("crash in the middle")
    assert dump(state_dir) == before


def test_nested_transactions_join(store):
    with store.transaction() as outer:
        with store.transaction() as inner:
            assert inner is outer
            inner.set_meta("a", "1")
        outer.set_meta("b", "2")
    assert (store.get_meta("a"), store.get_meta("b")) == ("1", "2")
    assert store.load().meta == {"a": "1", "b": "2"}


def test_events_refuse_secrets(store):
    with pytest.raises(StoreError, match="secret"), store.transaction() as tx:
        tx.record_event("oops", "x", {"key": keys.generate_psk()})
    assert store.events("x") == []


def test_files_are_private_from_creation(store, state_dir):
    objects.add_peer(store, "acme/alice")
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    with store.transaction() as tx:  # the rollback journal exists now
        tx.set_meta("k", "v")
        modes = _modes(state_dir)
    assert any(name.endswith("-journal") or name.endswith("-wal") for name in modes)
    assert set(modes.values()) == {0o600}, modes
    assert set(_modes(state_dir).values()) == {0o600}


def test_init_does_not_loosen_under_a_permissive_umask(tmp_path):
    old = os.umask(0)
    try:
        objects.init(tmp_path / "s")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "s").stat().st_mode) == 0o700
    assert set(_modes(tmp_path / "s").values()) == {0o600}


def test_schema_version_and_newer_store_refused(store, state_dir):
    assert store.schema_version() == SCHEMA_VERSION
    with sqlite3.connect(state_dir / "wggw.db") as db:
        db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="newer than this wggw"):
        open_store(state_dir)


def test_missing_store(tmp_path):
    with pytest.raises(StoreMissingError, match="run `wggw init`"):
        open_store(tmp_path / "none")
    assert not (tmp_path / "none").exists()


def test_lock_is_reentrant_in_process(store, state_dir):
    with store.locked(timeout=0), store.locked(timeout=0):
        with open_store(state_dir) as other, other.transaction() as tx:  # same process: no deadlock
            tx.set_meta("k", "v")


def test_busy_lock_fails_after_bounded_wait_with_exit_75(store, state_dir):
    fd = os.open(state_dir / "lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        before = dump(state_dir)
        start = time.monotonic()
        result = run_wggw(state_dir, "peer", "add", "acme/alice", env={"WGGW_LOCK_TIMEOUT": "0.5"})
        assert result.returncode == 75, result.stderr
        assert time.monotonic() - start < 10
        assert (
            result.stderr.startswith("wggw: error: state lock ")
            and "gave up after 0.5s" in result.stderr
        )
        assert len(result.stderr.strip().splitlines()) == 1
        assert dump(state_dir) == before
        # a reader does not need the lock
        assert run_wggw(state_dir, "peer", "list").returncode == 0
    finally:
        os.close(fd)
    assert run_wggw(state_dir, "peer", "add", "acme/alice").returncode == 0


def test_lock_busy_error_class(store, state_dir):
    fd = os.open(state_dir / "lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        from wggw.store import lock as storelock

        with pytest.raises(LockBusyError) as e, storelock.flock(state_dir / "lock", 0.1):
            pass
        assert e.value.exit_code == 75
    finally:
        os.close(fd)


def test_damaged_key_in_store_is_a_store_error_on_use_never_silent(store, state_dir):
    """Keys read back from the store skip validation on load (keys.Secret._trusted), but a
    damaged one is still reported as a StoreError when used, and the value never shows."""
    objects.add_peer(store, "acme/alice")
    bad = "not!base64" + "A" * 30
    with sqlite3.connect(state_dir / "wggw.db") as db:
        db.execute("UPDATE peers SET psk = ? WHERE name = 'alice'", (bad,))
    with open_store(state_dir) as s:
        peer = s.load().peers[0]
    assert peer.psk != keys.Secret(keys.generate_psk().reveal())  # compares without raising
    with pytest.raises(StoreError, match="damaged") as info:
        peer.psk.reveal()
    assert bad not in str(info.value)
    res = run_wggw(state_dir, "peer", "config", "acme/alice")
    assert res.returncode == 1 and "damaged" in res.stderr and bad not in res.stderr + res.stdout


def test_trusted_keys_compare_and_reveal_like_checked_ones(store):
    psk = keys.generate_psk()
    trusted = keys.Secret._trusted(psk.reveal())
    assert trusted == psk and hash(trusted) == hash(psk) and trusted.reveal() == psk.reveal()
    assert repr(trusted) == "Secret(***)"


def test_point_reads_answer_like_the_loaded_state(store):
    from wggw.core import validate

    alice = objects.add_peer(store, "acme/alice")
    bob = objects.add_peer(store, "acme/bob")
    old_key = keys.public_of(keys.generate_private())
    old = RetiringKey(old_key, None, (ipaddress.ip_interface("10.10.0.9/32"),), time.time() + 60)
    with store.transaction() as tx:
        tx.update_peer(replace(bob, retiring=old))
    state = store.load()
    with store.transaction() as tx:
        assert tx.tenant("acme") == state.tenants[0] and tx.tenant("nope") is None
        assert tx.peer("acme", "alice") == alice and tx.peer("acme", "carol") is None
        assert tx.interface("wg0") == state.interfaces[0] and tx.interface("wg9") is None
        for key in (alice.public_key, old_key, state.interfaces[0].public_key, "unused"):
            assert tx.key_user(key) == validate.key_user(state, key)
        assert tx.key_user(old_key) == ("peer", "acme/bob")
        assert tx.tenant_addresses("acme") == {
            ipaddress.ip_address(a)
            for a in ("10.10.0.2", "fd00:10::2", "10.10.0.3", "fd00:10::3", "10.10.0.9")
        }
        assert tx.tenant_addresses("nope") == set()


def test_schema_1_store_gains_the_retiring_key_index(state_dir):
    from wggw.store.sqlite import MIGRATIONS

    state_dir.mkdir(mode=0o700, exist_ok=True)
    with sqlite3.connect(state_dir / "wggw.db") as db:
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for statement in MIGRATIONS[0]:
            db.execute(statement)
        db.execute("INSERT INTO schema_version (version) VALUES (1)")
    with open_store(state_dir) as s:
        assert s.schema_version() == SCHEMA_VERSION >= 2
    with sqlite3.connect(state_dir / "wggw.db") as db:
        plan = " ".join(
            r[-1]
            for r in db.execute(
                "EXPLAIN QUERY PLAN SELECT tenant FROM peers"
                " WHERE public_key = 'k' OR retiring_public_key = 'k'"
            )
        )
    assert "peers_retiring_public_key" in plan and "SCAN" not in plan.replace("SCAN CONSTANT", "")


@pytest.mark.parametrize(
    "addresses",
    [
        ["100.64.0.2/32"],
        ["2001:db8::2/128"],
        ["10.0.0.2/32", "2001:db8::2/128"],
        [],
        ['10.0.0.2/32"', "x"],  # damaged: a quote inside (not the one-address fast path)
    ],
)
def test_stored_addresses_read_as_json_would(addresses):
    """codec.addresses_from_text reads one address without the JSON parser: the same values
    as parsing the JSON list, and anything else still goes through the parser."""
    import json

    from wggw.store.codec import addresses_from_text

    text = json.dumps(addresses)
    if any('"' in a for a in addresses):
        with pytest.raises(ValueError):
            addresses_from_text(text)
        return
    assert addresses_from_text(text) == tuple(ipaddress.ip_interface(a) for a in addresses)

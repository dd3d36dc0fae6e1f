"""What makes a cold converge cheaper must not change what it proves: the verify reuses the
compiled desired state only when the host facts compile to the same thing; it looks at the
host (not the devices) while the last peer transaction runs, only when nothing follows it,
and every failure still surfaces; the cyclic garbage collector, paused inside a converge,
is back on afterwards, also after an error."""

from __future__ import annotations

import gc
import threading
from dataclasses import replace

import pytest

from tests.dataplane.test_plan_converges import IFACE, peer, tenant
from wggw.backends.fake import FakeSystem
from wggw.core import desired as desired_mod
from wggw.core.errors import BackendError, HostConflictError, VerifyError
from wggw.core.hostfacts import DefaultRoute
from wggw.core.model import State
from wggw.core.plan import (
    AddRoute,
    AddRule,
    AddTc,
    ConfigureDevice,
    CreateDevice,
    RemovePeer,
    ReplaceNft,
    SetLink,
    UpsertPeer,
)
from wggw.ops import converge as reconcile


def _state() -> State:
    t = tenant(1)
    return State((IFACE,), (t,), (peer(t, 0), peer(t, 1)))


def test_wggw_own_links_and_addresses_keep_the_compilation():
    state, fake = _state(), FakeSystem()
    before = fake.facts()
    reconcile.converge(state, fake)
    after = fake.facts()
    assert after != before  # the device is a new link
    assert desired_mod.still_compiles_same(
        state, before, replace(after, foreign_addresses=after.foreign_addresses | {"10.1.0.1"})
    )


def test_what_compilation_reads_forces_a_new_compile():
    state, fake = _state(), FakeSystem()
    facts = fake.facts()
    moved = {4: DefaultRoute("eth0", "192.0.2.253"), 6: facts.default_routes[6]}
    assert not desired_mod.still_compiles_same(state, facts, replace(facts, default_routes=moved))
    assert not desired_mod.still_compiles_same(state, facts, replace(facts, links=frozenset()))
    taken = replace(facts, foreign_addresses=facts.foreign_addresses | {"203.0.113.1"})
    assert not desired_mod.still_compiles_same(state, facts, taken)


def test_the_verify_compiles_again_when_the_facts_moved(monkeypatch):
    """An egress that became the host's own between apply and verify is refused by the
    verify's compile, as before (the reuse did not hide it)."""
    state, fake = _state(), FakeSystem()
    first = reconcile.compute(state, fake)
    fake.facts_ = replace(fake.facts_, foreign_addresses=frozenset({"203.0.113.1"}))
    with pytest.raises(HostConflictError):
        reconcile.compute(state, fake, check_nft=False, previous=first)


def test_reused_compilation_is_the_one_the_verify_would_build():
    state, fake = _state(), FakeSystem()
    first = reconcile.converge(state, fake)
    second = reconcile.compute(state, fake, check_nft=False, previous=first)
    assert second.desired is first.desired
    assert second.desired == desired_mod.compile_state(state, fake.facts())
    assert second.changes == []


def test_gc_is_paused_inside_and_restored_after_success_and_error(monkeypatch):
    state, fake = _state(), FakeSystem()
    seen = []
    apply = fake.apply
    monkeypatch.setattr(fake, "apply", lambda c, e=None: (seen.append(gc.isenabled()), apply(c)))
    assert gc.isenabled()
    reconcile.converge(state, fake)
    # the device, then its peers alongside its addresses, routes and rules
    assert seen == [False, False, False] and gc.isenabled()

    monkeypatch.setattr(fake, "apply", lambda c, e=None: None)  # changes nothing: verify fails
    with pytest.raises(VerifyError):
        reconcile.converge(_state(), fake)
    assert gc.isenabled()
    gc.disable()
    try:
        reconcile.converge(state, FakeSystem())
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()


def _peers_only(changes) -> bool:
    return bool(changes) and all(isinstance(c, (UpsertPeer, RemovePeer)) for c in changes)


def test_host_is_observed_while_the_trailing_peers_are_set(monkeypatch):
    """The peers' transaction waits until the host has been looked at: without the overlap
    it would wait its full 5 s and record that it was not seen in time."""
    state, fake = _state(), FakeSystem()
    looked, calls = threading.Event(), []
    apply, observe_host = fake.apply, fake.observe_host

    def slow_apply(changes, echo=None):
        if _peers_only(changes):
            calls.append(("peers", looked.wait(5), threading.current_thread().name))
        else:
            calls.append(("other", None, threading.current_thread().name))
        apply(changes, echo)

    def host():
        looked.set()
        return observe_host()

    monkeypatch.setattr(fake, "apply", slow_apply)
    monkeypatch.setattr(fake, "observe_host", host)
    result = reconcile.converge(state, fake)
    assert sorted(c[:2] for c in calls) == [("other", None)] * 2 + [("peers", True)]
    peers = next(c for c in calls if c[0] == "peers")
    assert peers[2] != threading.main_thread().name
    assert reconcile.compute(state, fake).changes == [] and result.changes


def test_peers_start_after_the_guards_and_alongside_routes_and_rules(monkeypatch):
    """Fail-closed order: the device, its link, the nft table (with its guard) and the tc
    guard are all in place before the peers' transaction starts; the addresses, routes and
    rules go out while it runs (here: the peers wait until they are all in), and every
    change is printed as one `[#]` line, in the order they are started."""
    state, fake = _state(), FakeSystem()
    started: list[list[str]] = []
    side_done = threading.Event()
    apply = fake.apply

    def watching(changes, echo=None):
        if _peers_only(changes):
            started.append(list(fake.log))
            assert side_done.wait(5), "routes and rules were not applied alongside the peers"
        apply(changes, echo)
        if any(isinstance(c, AddRule) for c in changes):
            side_done.set()

    monkeypatch.setattr(fake, "apply", watching)
    printed: list[str] = []
    result = reconcile.converge(state, fake, printed.append)
    (before,) = started
    kinds = {type(c) for c in result.changes}
    assert {ReplaceNft, AddTc, SetLink, CreateDevice, AddRoute, AddRule} <= kinds
    for kind in (CreateDevice, ConfigureDevice, SetLink, ReplaceNft, AddTc):
        assert any(str(c) in before for c in result.changes if isinstance(c, kind)), kind
    assert not any(str(c) in before for c in result.changes if isinstance(c, UpsertPeer))
    assert sorted(printed) == sorted(str(c) for c in result.changes)
    peer_lines = [str(c) for c in result.changes if isinstance(c, UpsertPeer)]
    assert printed[-len(peer_lines) :] == peer_lines
    nft = next(str(c) for c in result.changes if isinstance(c, ReplaceNft))
    first_route = next(str(c) for c in result.changes if isinstance(c, AddRoute))
    assert printed.index(nft) < printed.index(first_route)
    assert reconcile.compute(state, fake).changes == []


def test_a_refused_table_fails_the_apply_before_anything_changed(monkeypatch):
    """No `nft -c` before a converge: the table's load is the first change, so a table the
    kernel refuses leaves the host as it was (nothing created, no peer, no route)."""
    state, fake = _state(), FakeSystem()
    apply = fake.apply
    checked: list[str] = []
    monkeypatch.setattr(fake, "check_nft", checked.append)

    def refusing(changes, echo=None, **kw):
        for i, change in enumerate(changes):
            if isinstance(change, ReplaceNft):
                apply(changes[:i], echo)
                raise BackendError("nftables table inet wggw: load failed: Error: syntax error")
        apply(changes, echo)

    monkeypatch.setattr(fake, "apply", refusing)
    with pytest.raises(BackendError, match="load failed"):
        reconcile.converge(state, fake)
    assert fake.log == [] and fake.state == FakeSystem().state
    assert checked == []  # the kernel's word on the load itself, not a check beforehand


def test_no_overlap_when_something_follows_the_peers(monkeypatch):
    """A peer removal followed by deletions (a tenant removed): the host is observed after
    everything, as before."""
    t1, t2 = tenant(1), tenant(2)
    p1, p2 = peer(t1, 0), peer(t2, 0)
    fake = FakeSystem()
    reconcile.converge(State((IFACE,), (t1, t2), (p1, p2)), fake)
    later = State((IFACE,), (t1,), (p1, peer(t1, 1)))
    monkeypatch.setattr(fake, "observe_host", lambda: pytest.fail("observed during apply"))
    changes = reconcile.converge(later, fake).changes
    assert any(isinstance(c, UpsertPeer) for c in changes)
    assert not isinstance(changes[-1], (UpsertPeer, RemovePeer))


def test_a_failed_peer_transaction_is_raised_not_lost(monkeypatch):
    state, fake = _state(), FakeSystem()
    apply = fake.apply

    def failing(changes, echo=None):
        if _peers_only(changes):
            raise BackendError("wireguard-go wgt0: UAPI set failed: errno=-22")
        apply(changes, echo)

    monkeypatch.setattr(fake, "apply", failing)
    with pytest.raises(BackendError, match="UAPI set failed"):
        reconcile.converge(state, fake)
    # ... also when the look at the host failed at the same time: the apply's error first
    monkeypatch.setattr(fake, "observe_host", lambda: (_ for _ in ()).throw(OSError("dump")))
    with pytest.raises(BackendError, match="UAPI set failed"):
        reconcile.converge(state, fake)


def test_a_failed_look_is_raised_after_the_peers_are_set(monkeypatch):
    state, fake = _state(), FakeSystem()
    monkeypatch.setattr(fake, "observe_host", lambda: (_ for _ in ()).throw(OSError("dump")))
    with pytest.raises(OSError, match="dump"):
        reconcile.converge(state, fake)
    assert fake.observe().wg[IFACE.name].peers  # the transaction was not cut short


def test_peers_left_unset_are_still_caught(monkeypatch):
    """The overlapped verify still reads every device afterwards: a peer transaction that
    silently did nothing is a VerifyError."""
    state, fake = _state(), FakeSystem()
    apply = fake.apply
    monkeypatch.setattr(fake, "apply", lambda c, e=None: None if _peers_only(c) else apply(c, e))
    with pytest.raises(VerifyError, match="still differs"):
        reconcile.converge(state, fake)


def test_a_gone_wggw_device_keeps_the_compilation_unless_it_is_an_uplink():
    """A killed wireguard-go takes its link along; compiling reads links only for uplinks,
    so its repair reuses the compiled state (50,000 peers: ~1 s). A device that is some
    tenant's uplink is read by compilation: gone, it compiles again (and fails there)."""
    state, fake = _state(), FakeSystem()
    reconcile.converge(state, fake)
    facts = fake.facts()
    assert IFACE.name in facts.links
    gone = replace(facts, links=facts.links - {IFACE.name})
    assert desired_mod.still_compiles_same(state, facts, gone)
    uplinked = replace(state, tenants=(replace(state.tenants[0], uplink=IFACE.name),))
    assert not desired_mod.still_compiles_same(uplinked, facts, gone)


class PreparingFake(FakeSystem):
    """The fake host with the real host's `prepare_peers` (which enables the dark start),
    recording which changes were in when the peers' transaction began."""

    def __init__(self) -> None:
        super().__init__()
        self.at_peers: list[str] | None = None

    def prepare_peers(self, changes):
        def send() -> None:
            self.at_peers = list(self.log)
            self.apply(changes)

        return send


def test_new_devices_get_their_peers_while_their_links_are_down():
    """Dark start: a device this plan creates is configured and gets its peers before the
    table loads, but its link comes up only after the table and the tc guard (a down link
    passes nothing, and WireGuard opens no socket for it). The result is the same host."""
    state, fake = _state(), PreparingFake()
    result = reconcile.converge(state, fake)
    kinds = {type(c) for c in result.changes}
    assert {CreateDevice, ConfigureDevice, ReplaceNft, AddTc, SetLink, UpsertPeer} <= kinds
    assert fake.at_peers is not None
    first = {type(c): str(c) for c in result.changes}
    assert first[CreateDevice] in fake.at_peers and first[ConfigureDevice] in fake.at_peers
    assert first[SetLink] not in fake.at_peers  # the link was down when the peers went in
    order = fake.log.index
    link_up = order(first[SetLink])
    assert order(first[ReplaceNft]) < link_up
    assert all(order(str(c)) < link_up for c in result.changes if isinstance(c, AddTc))
    assert reconcile.compute(state, fake).changes == []


def test_a_refused_table_after_a_dark_start_leaves_the_host_as_it_was(monkeypatch):
    """The table is refused after the new device got its peers: the device is removed
    again and the table's failure is the one reported."""
    state, fake = _state(), PreparingFake()
    apply = fake.apply

    def refusing(changes, echo=None, **kw):
        if any(isinstance(c, ReplaceNft) for c in changes):
            raise BackendError("nftables table inet wggw: load failed: Error: syntax error")
        apply(changes, echo)

    monkeypatch.setattr(fake, "apply", refusing)
    with pytest.raises(BackendError, match="load failed"):
        reconcile.converge(state, fake)
    assert fake.at_peers is not None  # the dark start did begin
    assert fake.state == FakeSystem().state


def test_peers_of_an_existing_device_still_wait_for_the_guards():
    """A device that exists has its link up: a peer added to it goes in only after the
    table (here changed too: a new tenant) is loaded, as before."""
    fake = PreparingFake()
    t1, t2 = tenant(1), tenant(2)
    reconcile.converge(State((IFACE,), (t1,), (peer(t1, 0),)), fake)
    fake.log.clear()
    result = reconcile.converge(State((IFACE,), (t1, t2), (peer(t1, 0), peer(t2, 0))), fake)
    table = next(str(c) for c in result.changes if isinstance(c, ReplaceNft))
    assert fake.at_peers is not None and table in fake.at_peers

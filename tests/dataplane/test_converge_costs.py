"""What makes a cold converge cheaper must not change what it proves: the verify reuses the
compiled desired state only when the host facts compile to the same thing, and the cyclic
garbage collector, paused inside a converge, is back on afterwards, also after an error."""

from __future__ import annotations

import gc
from dataclasses import replace

import pytest

from tests.dataplane.test_plan_converges import IFACE, peer, tenant
from wggw.backends.fake import FakeSystem
from wggw.core import desired as desired_mod
from wggw.core.errors import HostConflictError, VerifyError
from wggw.core.hostfacts import DefaultRoute
from wggw.core.model import State
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
    assert seen == [False] and gc.isenabled()

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

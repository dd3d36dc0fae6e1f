"""The agent's one-peer delta (agent/onepeer.py) against the in-memory host: it reads neither
the device nor the whole store, and what it leaves is what a full reconcile wants (the plan
against the whole host is empty afterwards); a tenant the agent has not converged is not its
job, and a device that refuses the delta sends the change down the observing path."""

from __future__ import annotations

import pytest

from wggw.agent import apply, onepeer
from wggw.agent.loop import Agent
from wggw.agent.metrics import AgentMetrics
from wggw.backends.fake import FakeSystem
from wggw.core.errors import BackendError
from wggw.core.plan import RemovePeer, UpsertPeer
from wggw.ops import converge, objects
from wggw.ops.agentclient import store_id
from wggw.store.sqlite import open_store


class Counted:
    """Forwards to `inner`, counting the calls of each method; `forbidden` ones fail."""

    def __init__(self, inner, forbidden: tuple[str, ...] = ()) -> None:
        self.inner, self.forbidden, self.calls = inner, forbidden, {}

    def __getattr__(self, name: str):
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def call(*args, **kw):
            self.calls[name] = self.calls.get(name, 0) + 1
            if name in self.forbidden:
                raise AssertionError(f"{name} called by the one-peer delta")
            return attr(*args, **kw)

        return call


READS = ("observe", "observe_peers", "has_routes", "facts")


@pytest.fixture
def host(gw, state_dir):
    for i in range(3):
        gw("peer", "add", f"acme/p{i}")
    system = FakeSystem()
    with open_store(state_dir) as store:
        apply.full_converge(store, system, housekeeping=False)
        live = onepeer.live_tenants(store.load())
    return system, live


def test_add_and_remove_touch_one_peer_and_read_nothing_else(gw, state_dir, host) -> None:
    fake, live = host
    system = Counted(fake, forbidden=READS)
    with open_store(state_dir) as s:
        store = Counted(s, forbidden=("load",))
        with s.locked():
            peer = objects.add_peer(s, "acme/new")
        lines: list[str] = []
        changes = onepeer.delta(store, system, live, "acme", "new", {peer.public_key}, lines.append)
        assert [type(c) for c in changes] == [UpsertPeer]
        assert changes[0].peer.public_key == peer.public_key
        assert len(lines) == 1 and peer.public_key in lines[0]
        assert not set(system.calls) & set(READS) and store.calls.get("load") is None
        assert converge.compute(s.load(), fake).changes == []  # what a full round wants

        with s.locked():
            gone = objects.remove_peer(s, "acme/p1")
        changes = onepeer.delta(store, system, live, "acme", None, {gone.public_key})
        assert changes == [RemovePeer("wg0", gone.public_key)]
        assert gone.public_key not in fake.state.wg["wg0"].peers
        assert converge.compute(s.load(), fake).changes == []
        assert not set(system.calls) & set(READS) and store.calls.get("load") is None


def test_a_tenant_not_converged_is_left_to_the_reconcile(gw, state_dir, host) -> None:
    fake, live = host
    with open_store(state_dir) as store, store.locked():
        peer = objects.add_peer(store, "acme/late")
    with open_store(state_dir) as store:
        keys = {peer.public_key}
        assert onepeer.delta(store, fake, {}, "acme", "late", keys) is None  # nothing live
        moved = {"acme": "wg9"}  # converged on another interface than the store now says
        assert onepeer.delta(store, fake, moved, "acme", "late", keys) is None
        assert onepeer.delta(store, fake, live, "acme", "nosuch", keys) is None
        assert peer.public_key not in fake.state.wg["wg0"].peers  # nothing was applied


class Refusing(FakeSystem):
    """A host whose device refuses the one-peer transaction (e.g. wireguard-go just died)."""

    def apply_peers(self, changes, echo=None) -> None:
        raise BackendError("wireguard-go wg0: UAPI set failed: [Errno 111] Connection refused")


def test_a_refused_delta_falls_back_to_the_observing_reconcile(gw, state_dir, monkeypatch) -> None:
    gw("peer", "add", "acme/p0")
    system = Refusing()
    monkeypatch.setattr(apply, "system_for", lambda backend: system)
    logged: list[tuple[str, dict]] = []
    with open_store(state_dir) as store:
        apply.full_converge(store, system, housekeeping=False)
        agent = Agent(store, None, lambda event, **f: logged.append((event, f)), AgentMetrics())
        agent._track(store.load())
        with store.locked():
            peer = objects.add_peer(store, "acme/new")
        reply = agent._handle(
            {
                "op": "peer",
                "store": store_id(store),
                "tenant": "acme",
                "peer": "new",
                "keys": [peer.public_key],
            }
        )
        assert reply["ok"] and reply["path"] == "reconcile", reply
        assert any(e == "error" and "falling back" in f.get("note", "") for e, f in logged)
        assert peer.public_key in system.state.wg["wg0"].peers
        assert converge.compute(store.load(), system).changes == []

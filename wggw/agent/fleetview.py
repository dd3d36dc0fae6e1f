"""One gateway's view of a fleet's store, for `wggw agent --gateway NAME`.

`GatewayStore` is the store with `load()` cut to `core.placement.on_gateway(state, NAME)`:
every round (start, store change, drift, resync, the rotation housekeeping) then sees only
what is placed on this gateway, through the one converge path, which never learns about
fleets. Writes and point reads pass through unchanged. `round_lock` is the lock a round
holds: the gateway's own lock where the store has one (PostgreSQL: an advisory lock on a hash
of the gateway's name), never the whole-store command lock, so that operators on other hosts
and the other gateways' agents never wait for this one's converge; the round reads a
snapshot and its few writes (housekeeping, the audit record) take the command lock for their
own short transaction. Without a gateway (a single host) the round holds the store lock as
before. `owns_peer_change` keeps a handed-over peer change of another gateway's tenant away
from this host.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from wggw.core import placement
from wggw.core.model import State


class GatewayStore:
    """The store as one gateway sees it (load filtered, everything else the store's)."""

    def __init__(self, store, gateway: str) -> None:
        self._store, self.gateway = store, gateway

    def load(self) -> State:
        return placement.on_gateway(self._store.load(), self.gateway)

    def whole(self):
        return self._store

    def __getattr__(self, name: str):
        return getattr(self._store, name)


def whole(store):
    """The store under a GatewayStore (or the store itself)."""
    return store.whole() if isinstance(store, GatewayStore) else store


def round_holds_store_lock(store) -> bool:
    """Whether `round_lock` is the whole-store lock (nobody else commits meanwhile)."""
    return not (isinstance(store, GatewayStore) and getattr(whole(store), "gateway_locked", None))


@contextlib.contextmanager
def round_lock(store, timeout: float | None = None) -> Iterator[None]:
    """What one agent round holds (see the module docstring)."""
    base = whole(store)
    gateway_locked = getattr(base, "gateway_locked", None)
    if isinstance(store, GatewayStore) and gateway_locked is not None:
        with gateway_locked(store.gateway, timeout):
            yield
    else:  # one host (SQLite, or no gateway): the store lock, as a single-host agent does
        with base.locked(timeout):
            yield


def owns_peer_change(store, tenant: str) -> bool:
    """Whether a change to `tenant`'s peers is this agent's to apply: always without a
    gateway; with one, when the tenant is placed on it (two point reads, no whole load).
    A tenant the store does not hold: yes (the reconcile path then removes what is left)."""
    if not isinstance(store, GatewayStore):
        return True
    with store.snapshot() as tx:
        t = tx.tenant(tenant)
        if t is None:
            return True
        iface = tx.interface(t.interface)
    return store.gateway in placement.tenant_gateways(t, iface)

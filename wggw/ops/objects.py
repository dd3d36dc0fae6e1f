"""The operations behind the CLI: parse and validate input, allocate, write in one transaction.

Each function reads the state inside its transaction (so validation sees what the
lock protects), raises `ValidationError`/`NotFoundError` before writing anything,
and records an audit event without secrets. The CLI only parses and prints.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from wggw.core import alloc, keys, validate
from wggw.core.errors import ValidationError
from wggw.core.model import Interface, Peer, State, Tenant
from wggw.store import select
from wggw.store.sqlite import Store


def init(state_dir: Path, db: str | None = None) -> bool:
    """Create the store; True if it was created, False if it already existed (nothing changed).
    `db`: a PostgreSQL URL (else WGGW_DB, else SQLite in `state_dir`)."""
    return select.init(state_dir, db)[0]


# --- interfaces -----------------------------------------------------------------


def add_interface(
    store: Store,
    name: str,
    listen_port: int,
    endpoint: str,
    mtu: int | None = None,
    gateways: Iterable[str] = (),
) -> Interface:
    """`gateways`: the fleet gateways it runs on, by priority (none: the local one)."""
    validate.name("interface", name)
    private, public = keys.keypair()
    iface = Interface(
        name=name,
        listen_port=listen_port,
        endpoint=validate.endpoint(endpoint),
        private_key=private,
        public_key=public,
        mtu=validate.mtu(mtu),
    )
    with store.transaction() as tx:
        state = tx.load()
        validate.check_interface(state, iface)
        details: dict = {"public_key": public, "listen_port": listen_port}
        if gateways:
            from wggw.ops.gateways import check_gateways

            iface = replace(iface, gateways=check_gateways(state, gateways))
            details["gateways"] = list(iface.gateways)
        tx.add_interface(iface)
        tx.record_event("interface.add", name, details)
    return iface


def remove_interface(store: Store, name: str) -> None:
    with store.transaction() as tx:
        state = tx.load()
        validate.find_interface(state, name)
        users = [t.name for t in state.tenants_of(name)]
        if users:
            raise ValidationError(
                "interface", f"{name} still carries tenants {', '.join(users)}; remove them first"
            )
        tx.remove_interface(name)
        tx.record_event("interface.remove", name, {})


# --- tenants --------------------------------------------------------------------


def add_tenant(
    store: Store,
    name: str,
    pools: Iterable[str],
    egress: Iterable[str],
    interface: str | None = None,
    uplink: str | None = None,
    via: Iterable[str] = (),
    rotate_after: str | int | None = None,
    here: str | None = None,
) -> Tenant:
    """`here`: the fleet gateway this host is (None: the local one); the host is checked
    only if the tenant will run here."""
    validate.name("tenant", name)
    parsed_pools = validate.one_per_family("pool", [validate.cidr("pool", p) for p in pools])
    parsed_egress = validate.one_per_family("egress", [validate.ip("egress", e) for e in egress])
    parsed_via = validate.one_per_family("via", [validate.ip("via", v) for v in via])
    if isinstance(rotate_after, str):
        rotate_after = validate.duration("rotate-after", rotate_after)
    with store.transaction() as tx:
        state = tx.load()
        iface = validate.pick_interface(state, interface)
        tenant = Tenant(
            name=name,
            interface=iface.name,
            pools=parsed_pools,
            egress=parsed_egress,
            table=alloc.next_table(state),
            uplink=uplink,
            via=parsed_via,
            rotate_after=rotate_after,
        )
        validate.check_tenant(state, tenant)
        from wggw.core.placement import tenant_gateways
        from wggw.ops import hostcheck  # reads the host: only `tenant add/set` need it

        if here in tenant_gateways(tenant, iface):  # another gateway's host is not ours to read
            from wggw.core.ha import floats

            # egress = next hop, or on the host (unless keepalived's): refused now
            hostcheck.check_tenant(tenant, floats(tenant, iface))
        tx.add_tenant(tenant)
        tx.record_event(
            "tenant.add",
            name,
            {
                "interface": iface.name,
                "table": tenant.table,
                "pools": [str(p) for p in tenant.pools],
            },
        )
    return tenant


def set_tenant(store: Store, name: str, rotate_after: str | int | None) -> Tenant:
    """Change a tenant's settings that need no new addresses (today: its rotation policy;
    "default" or 0 returns the tenant to the global default)."""
    if isinstance(rotate_after, str):
        rotate_after = (
            None
            if rotate_after.strip() in ("default", "0")
            else validate.duration("rotate-after", rotate_after)
        )
    with store.transaction() as tx:
        tenant = replace(validate.find_tenant(tx.load(), name), rotate_after=rotate_after)
        tx.update_tenant(tenant)
        tx.record_event("tenant.set", name, {"rotate_after": rotate_after})
    return tenant


def remove_tenant(store: Store, name: str, force: bool = False) -> int:
    """Remove a tenant; with `force` its peers go too. Returns how many peers were removed."""
    with store.transaction() as tx:
        state = tx.load()
        validate.find_tenant(state, name)
        peers = state.peers_of(name)
        if peers and not force:
            raise ValidationError(
                "tenant", f"{name} still has {len(peers)} peer(s); remove them or pass --force"
            )
        for p in peers:
            tx.remove_peer(p.tenant, p.name)
            tx.record_event(
                "peer.remove", p.ref, {"public_key": p.public_key, "reason": "tenant removed"}
            )
        tx.remove_tenant(name)
        tx.record_event("tenant.remove", name, {"peers_removed": len(peers)})
    return len(peers)


# --- peers ------------------------------------------------------------------------


def add_peer(
    store: Store,
    ref: str,
    public_key: str | None = None,
    keepalive: int | None = None,
    dns: Iterable[str] = (),
    expires: str | None = None,
    now: float | None = None,
) -> Peer:
    """Allocate the next free address(es); generate a key pair and PSK unless the peer brings
    its own public key (then no private key is stored, and no PSK: nothing could deliver it)."""
    now = time.time() if now is None else now
    tenant_name, peer_name = validate.peer_ref(ref)
    dns_ips = tuple(validate.ip("dns", d) for item in dns for d in item.split(",") if d.strip())
    expires_at = None if expires is None else validate.when("expires", expires, now)
    keepalive = validate.keepalive(keepalive)
    if public_key is not None:
        private, psk, public = None, None, validate.public_key(public_key)
    else:
        private, psk = keys.generate_private(), keys.generate_psk()
        public = keys.public_of(private)
    with store.transaction() as tx:
        # Point queries, not tx.load(): at 10,000 peers decoding the store costs ~0.15 s.
        tenant = validate.found("tenant", tx.tenant(tenant_name), repr(tenant_name))
        peer = Peer(
            tenant=tenant_name,
            name=peer_name,
            public_key=public,
            addresses=(),
            key_created_at=now,
            private_key=private,
            psk=psk,
            keepalive=keepalive,
            dns=dns_ips,
            expires_at=expires_at,
            created_at=now,
        )
        validate.check_new_peer(
            peer, tx.peer(tenant_name, peer_name) is not None, tx.key_user(public)
        )
        peer = replace(
            peer, addresses=alloc.allocate_from(tenant, tx.tenant_addresses(tenant_name))
        )
        tx.add_peer(peer)
        tx.record_event(
            "peer.add",
            peer.ref,
            {
                "public_key": public,
                "own_key": private is None,
                "addresses": [str(a) for a in peer.addresses],
            },
        )
    return peer


def remove_peer(store: Store, ref: str) -> Peer:
    """Remove a peer; returns it as it was (its keys say what to take off the interface)."""
    tenant_name, peer_name = validate.peer_ref(ref)
    with store.transaction() as tx:
        validate.found("tenant", tx.tenant(tenant_name), repr(tenant_name))
        peer = validate.found("peer", tx.peer(tenant_name, peer_name), f"{tenant_name}/{peer_name}")
        tx.remove_peer(tenant_name, peer_name)
        tx.record_event("peer.remove", peer.ref, {"public_key": peer.public_key})
    return peer


def peer_scope(store: Store, tenant_name: str, peer: Peer | None, keys_: Iterable[str]):
    """What a one-peer reconcile needs (converge.PeerScope): the tenant and its interface as
    stored now, the peer if it (still) exists, and every WireGuard key the change touched."""
    from wggw.ops.converge import PeerScope

    with store.transaction() as tx:
        tenant = validate.found("tenant", tx.tenant(tenant_name), repr(tenant_name))
        iface = validate.found("interface", tx.interface(tenant.interface), repr(tenant.interface))
    return PeerScope(iface, tenant, () if peer is None else (peer,), frozenset(keys_))


def lookup_peer(state: State, ref: str) -> Peer:
    return validate.find_peer(state, *validate.peer_ref(ref))


def peer_config(state: State, ref: str) -> str:
    """The client's wg-quick config (contains its private key: write it 0600 or show it once)."""
    from wggw.ops import render

    peer = lookup_peer(state, ref)
    if peer.private_key is None:
        raise ValidationError(
            "peer",
            f"{peer.ref} was added with its own public key; wggw holds no "
            "private key for it, so the client keeps its own config",
        )
    tenant = validate.find_tenant(state, peer.tenant)
    return render.client_config(validate.find_interface(state, tenant.interface), tenant, peer)

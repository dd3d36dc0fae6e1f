"""Rows <-> model objects for the SQL stores: addresses as JSON lists of strings,
secrets as base64 text that becomes `keys.Secret` again on the way out."""

from __future__ import annotations

import ipaddress
import json
import socket
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from wggw.core import audit
from wggw.core.keys import Secret, clamp
from wggw.core.model import Gateway, Interface, Peer, RetiringKey, State, Tenant

# A stored row: sqlite3.Row from the store, or a plain mapping with the same columns.
Row = Mapping[str, Any] | sqlite3.Row


def _dump(values) -> str:
    return json.dumps([str(v) for v in values])


def _nets(text: str):
    return tuple(ipaddress.ip_network(v) for v in json.loads(text))


def _ips(text: str):
    if text == "[]":  # most peers have no DNS servers: skip the JSON parser
        return ()
    return tuple(ipaddress.ip_address(v) for v in json.loads(text))


def _iface(text: str):
    """ip_interface, with a fast path for IPv4 (a 10,000-peer store parses 10,000 of them
    on every load, and ipaddress's string parser is ~3x slower than inet_aton)."""
    addr, _, prefix = text.partition("/")
    if ":" in addr or not prefix:
        return ipaddress.ip_interface(text)
    try:
        packed = socket.inet_aton(addr)
    except OSError:
        return ipaddress.ip_interface(text)
    if addr.count(".") != 3:  # inet_aton also takes "10.1"; leave odd forms to ipaddress
        return ipaddress.ip_interface(text)
    return ipaddress.IPv4Interface((int.from_bytes(packed, "big"), int(prefix)))


def addresses_from_text(text: str):
    """A stored JSON list of peer addresses ("10.0.0.2/32", ...) as ip_interface values.
    One address, as nearly every peer has, is read without the JSON parser."""
    one = text[2:-2]
    if text[:2] == '["' and text[-2:] == '"]' and '"' not in one and "\\" not in one:
        return (_iface(one),)
    return tuple(_iface(v) for v in json.loads(text))


_ifaces = addresses_from_text


def _secret(value: str | None) -> Secret | None:
    """Validated when written; checked again on first use (keys.Secret._trusted)."""
    return None if value is None else Secret._trusted(value)


def _private(value: str | None) -> Secret | None:
    """A private key as WireGuard stores it: stores written before keys were clamped hold
    raw ones (keys.clamp; the public key is the same)."""
    return None if value is None else Secret._trusted(clamp(value))


def _reveal(secret: Secret | None) -> str | None:
    return None if secret is None else secret.reveal()


def tenant_to_row(t: Tenant) -> dict[str, Any]:
    return {
        "name": t.name,
        "interface": t.interface,
        "pools": _dump(t.pools),
        "egress": _dump(t.egress),
        "table_id": t.table,
        "uplink": t.uplink,
        "via": _dump(t.via),
        "rotate_after": t.rotate_after,
        "gateway": t.gateway,
        "moving_to": t.moving_to,
    }


def tenant_from_row(r: Row) -> Tenant:
    return Tenant(
        name=r["name"],
        interface=r["interface"],
        pools=_nets(r["pools"]),
        egress=_ips(r["egress"]),
        table=r["table_id"],
        uplink=r["uplink"],
        via=_ips(r["via"]),
        rotate_after=r["rotate_after"],
        gateway=r["gateway"],
        moving_to=r["moving_to"],
    )


def peer_to_row(p: Peer) -> dict[str, Any]:
    row = {
        "tenant": p.tenant,
        "name": p.name,
        "public_key": p.public_key,
        "addresses": _dump(p.addresses),
        "key_created_at": p.key_created_at,
        "private_key": _reveal(p.private_key),
        "psk": _reveal(p.psk),
        "keepalive": p.keepalive,
        "dns": _dump(p.dns),
        "expires_at": p.expires_at,
        "created_at": p.created_at,
    }
    r = p.retiring
    row.update(
        {
            "retiring_public_key": r and r.public_key,
            "retiring_psk": r and _reveal(r.psk),
            "retiring_addresses": r and _dump(r.addresses),
            "retiring_at": r and r.retire_at,
        }
    )
    return row


def peer_from_row(r: Row) -> Peer:
    retiring = None
    if r["retiring_public_key"] is not None:
        retiring = RetiringKey(
            public_key=r["retiring_public_key"],
            psk=_secret(r["retiring_psk"]),
            addresses=_ifaces(r["retiring_addresses"] or "[]"),
            retire_at=r["retiring_at"],
        )
    return Peer(
        tenant=r["tenant"],
        name=r["name"],
        public_key=r["public_key"],
        addresses=_ifaces(r["addresses"]),
        key_created_at=r["key_created_at"],
        private_key=_private(r["private_key"]),
        psk=_secret(r["psk"]),
        keepalive=r["keepalive"],
        dns=_ips(r["dns"]),
        expires_at=r["expires_at"],
        created_at=r["created_at"],
        retiring=retiring,
    )


def interface_to_row(i: Interface) -> dict[str, Any]:
    return {
        "name": i.name,
        "listen_port": i.listen_port,
        "endpoint": i.endpoint,
        "private_key": i.private_key.reveal(),
        "public_key": i.public_key,
        "mtu": i.mtu,
        "gateways": json.dumps(list(i.gateways)),
    }


def interface_from_row(r: Row) -> Interface:
    return Interface(
        name=r["name"],
        listen_port=r["listen_port"],
        endpoint=r["endpoint"],
        private_key=Secret._trusted(clamp(r["private_key"])),
        public_key=r["public_key"],
        mtu=r["mtu"],
        gateways=_names(r["gateways"]),
    )


def _names(text: str) -> tuple[str, ...]:
    return () if text == "[]" else tuple(json.loads(text))


def gateway_to_row(g: Gateway) -> dict[str, Any]:
    return {"name": g.name, "uplink": g.uplink, "via": _dump(g.via), "created_at": g.created_at}


def gateway_from_row(r: Row) -> Gateway:
    return Gateway(
        name=r["name"], uplink=r["uplink"], via=_ips(r["via"]), created_at=r["created_at"]
    )


def read_state(
    query: Callable[[str], Iterable[Row]],
    open_row: Callable[[str, Row], Row],
    peer_memo: dict | None = None,
) -> State:
    """The whole State from a store's tables: `query` runs a SELECT, `open_row` unseals a
    row's secrets (the same SQL on SQLite and PostgreSQL). `peer_memo` (raw row -> Peer,
    refilled with this load's rows) lets a resident reader decode and unseal only the peer
    rows that changed since its last load."""
    peers = (
        _memo_peers(query("SELECT * FROM peers ORDER BY tenant, name"), open_row, peer_memo)
        if peer_memo is not None
        else None
    )
    return State(
        interfaces=tuple(
            interface_from_row(open_row("interfaces", r))
            for r in query("SELECT * FROM interfaces ORDER BY name")
        ),
        tenants=tuple(tenant_from_row(r) for r in query("SELECT * FROM tenants ORDER BY name")),
        peers=peers
        if peers is not None
        else tuple(
            peer_from_row(open_row("peers", r))
            for r in query("SELECT * FROM peers ORDER BY tenant, name")
        ),
        meta={r["key"]: r["value"] for r in query("SELECT key, value FROM meta")},
        gateways=tuple(gateway_from_row(r) for r in query("SELECT * FROM gateways ORDER BY name")),
    )


def _memo_peers(rows: Iterable[Row], open_row, memo: dict) -> tuple[Peer, ...]:
    old, peers = dict(memo), []
    memo.clear()  # only this load's rows stay: removed peers are forgotten
    for r in rows:
        key = tuple(r.values()) if isinstance(r, Mapping) else tuple(r)
        peer = old.get(key)
        if peer is None:
            peer = peer_from_row(open_row("peers", r))
        memo[key] = peer
        peers.append(peer)
    return tuple(peers)


# The events table's columns of an audit record, in the order of event_values.
EVENT_COLUMNS = (
    "id",
    "at",
    "kind",
    "subject",
    "uid",
    "user",
    "command",
    "keys",
    "details",
    "prev",
    "hash",
)


def event_values(rec: audit.Record) -> tuple:
    """An audit record as the events row both stores write (EVENT_COLUMNS' order)."""
    return (
        rec.seq,
        rec.at,
        rec.kind,
        rec.subject,
        rec.uid,
        rec.user,
        rec.command,
        json.dumps(list(rec.keys)),
        rec.details_text or audit.plain(rec.details),
        rec.prev,
        rec.hash,
    )

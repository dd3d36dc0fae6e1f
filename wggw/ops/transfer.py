"""Migration to and from wg-quick: import a wg-quick server config's peers into a tenant
(read with wgconfig), export an interface's gateway side as a wg-quick file.

Both keep every peer's public key, PSK and addresses. An import is all-or-nothing:
every peer is checked against the tenant's pools and the store before one is written.
"""

from __future__ import annotations

import ipaddress
import re
import time
from pathlib import Path
from typing import Any

import wgconfig

from wggw.core import naming, validate
from wggw.core.batch import Batch, free_name
from wggw.core.errors import ValidationError
from wggw.core.keys import Secret, parse_key
from wggw.core.model import Peer, State, Tenant
from wggw.ops.render import gateway_config
from wggw.store.sqlite import Store

_NAME_COMMENT = re.compile(r"^#+\s*(?:name\s*[=:]\s*|client\s+|peer\s+)?(\S+)\s*$", re.IGNORECASE)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [str(v).strip() for v in items if str(v).strip()]


def _read(path: Path) -> dict[str, dict]:
    cfg = wgconfig.WGConfig(str(path.resolve()))
    try:
        cfg.read_file()
        peers = cfg.get_peers(keys_only=False, include_details=True)
    except OSError as e:
        raise ValidationError("file", f"cannot read {path}: {e.strerror}") from None
    except (ValueError, KeyError, TypeError) as e:  # TypeError: "PublicKey = a, b" (a list)
        raise ValidationError("file", f"{path} is not a wg-quick config: {e}") from None
    _no_duplicate_keys(path, cfg.lines)
    return peers


def _no_duplicate_keys(path: Path, lines: list[str]) -> None:
    """wgconfig keys peers by PublicKey: a second [Peer] with the same key would silently
    replace the first, and the import would lose a peer without a word."""
    seen: set[str] = set()
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and key.strip().lower() == "publickey":
            if value.strip() in seen:
                raise ValidationError(
                    "file", f"{path}: PublicKey {value.strip()} is in two [Peer] sections"
                )
            seen.add(value.strip())


def _comment_name(raw: list[str]) -> str | None:
    """A peer name from a comment like '# Name = acme/alice', '### Client bob' or '# carol'."""
    for line in raw:
        m = _NAME_COMMENT.match(line.strip())
        if m:
            candidate = m.group(1).rsplit("/", 1)[-1]
            if naming.valid_name(candidate):
                return candidate
    return None


def _peer_from(data: dict, tenant: Tenant, batch: Batch, name: str, now: float) -> Peer:
    key = parse_key(str(data.get("PublicKey", "")), f"PublicKey of peer {name}")
    psk_text = data.get("PresharedKey")
    psk = Secret(parse_key(str(psk_text), f"PresharedKey of peer {name}")) if psk_text else None
    field = f"AllowedIPs of peer {name}"
    addresses = []
    for item in _as_list(data.get("AllowedIPs")):
        try:
            addr = ipaddress.ip_interface(item)
        except ValueError:
            raise ValidationError(field, f"{item!r} is not an address") from None
        addresses.append(batch.requested(tenant, addr, field))
    if not addresses:
        raise ValidationError(field, "no address: every peer needs one inside the tenant's pools")
    validate.one_per_family(field, [a.ip for a in addresses])
    keepalive = data.get("PersistentKeepalive")
    return Peer(
        tenant=tenant.name,
        name=name,
        public_key=key,
        addresses=tuple(addresses),
        key_created_at=now,
        psk=psk,
        created_at=now,
        keepalive=_keepalive(keepalive, name),
    )


def _keepalive(text: Any, name: str) -> int | None:
    if not text:
        return None
    return validate.keepalive(validate.integer(f"PersistentKeepalive of peer {name}", str(text)))


def import_wg_quick(
    store: Store, path: Path, tenant_name: str, now: float | None = None
) -> list[Peer]:
    """Add every enabled [Peer] of a wg-quick file to `tenant_name`; returns the new peers.
    The state is loaded once and every peer checked against it and the peers before it
    (core/batch.py): linear in the number of peers."""
    now = time.time() if now is None else now
    sections = _read(Path(path))
    added: list[Peer] = []
    with store.transaction() as tx:
        batch = Batch(tx.load())
        tenant = batch.tenant(tenant_name)
        taken, counter = batch.taken_names(tenant.name), [1]
        for data in sections.values():
            if data.get("_disabled"):
                continue
            name = free_name(taken, _comment_name(data.get("_rawdata", [])), counter)
            peer = _peer_from(data, tenant, batch, name, now)
            batch.check(peer)
            batch.accept(peer)
            added.append(peer)
        for peer in added:
            tx.add_peer(peer)
            tx.record_event(
                "peer.import", peer.ref, {"public_key": peer.public_key, "file": str(path)}
            )
    return added


def export_wg_quick(state: State, interface: str) -> str:
    """The gateway side of `interface` (its private key, every peer) as wg-quick text."""
    iface = validate.find_interface(state, interface)
    tenants = state.tenants_of(iface.name)
    peers = [p for t in tenants for p in state.peers_of(t.name)]
    return gateway_config(iface, tenants, peers)

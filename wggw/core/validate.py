"""Validation of operator input against the current `State` (pure: no I/O, time passed in).

Parsers turn CLI strings into typed values; `check_*` functions test a new object
against the state. Every failure is one `ValidationError(field, problem)`, so the
CLI prints one line naming the field and exits 2 with the store unchanged.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TypeVar

from wggw.core import keys, naming
from wggw.core.errors import NotFoundError, ValidationError
from wggw.core.model import Interface, IPAddress, IPNetwork, Peer, State, Tenant

MTU_MIN, MTU_MAX = 1280, 9000  # 1280: the IPv6 minimum link MTU
PORT_MIN, PORT_MAX = 1, 65535
KEEPALIVE_MAX = 65535
DURATION_MAX = 100 * 365 * 86400  # 100 years: more is a typo, and must fit the store's integers
# Smallest pools that still hold network, gateway, (broadcast) and one peer.
MAX_PREFIX = {4: 30, 6: 126}

_HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)
# Linux accepts more than naming.valid_name for devices wggw does not create
# (e.g. VLANs `eth0.100`); an uplink only has to be a plausible kernel name.
_DEVNAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$")
_DURATION_RE = re.compile(r"^([0-9]+[wdhms])+$")  # ASCII digits: '٣d' is a typo, not 3 days
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


# --- scalar parsers -------------------------------------------------------------


def name(field: str, value: str) -> str:
    if not naming.valid_name(value):
        raise ValidationError(
            field,
            f"{value!r} is not a safe name "
            "(letter first, then letters, digits, '_' or '-', at most 15)",
        )
    return value


def device(field: str, value: str) -> str:
    if not _DEVNAME_RE.match(value) or value in (".", ".."):
        raise ValidationError(field, f"{value!r} is not a valid network device name")
    return value


def int_range(field: str, value: int, lo: int, hi: int) -> int:
    if not lo <= value <= hi:
        raise ValidationError(field, f"{value} is out of range {lo}..{hi}")
    return value


def integer(field: str, value: str) -> int:
    """Decimal text (a file's field, not a CLI option: typer parses those) -> int."""
    text = value.strip()
    if not re.fullmatch(r"[+-]?[0-9]{1,18}", text):
        raise ValidationError(field, f"{value!r} is not a whole number")
    return int(text)


def port(field: str, value: int) -> int:
    return int_range(field, value, PORT_MIN, PORT_MAX)


def mtu(value: int | None) -> int | None:
    return None if value is None else int_range("mtu", value, MTU_MIN, MTU_MAX)


def keepalive(value: int | None) -> int | None:
    """0 means off in WireGuard; it is stored as None so 'off' has one spelling."""
    if value is None:
        return None
    return int_range("keepalive", value, 0, KEEPALIVE_MAX) or None


def ip(field: str, value: str) -> IPAddress:
    try:
        addr = ipaddress.ip_address(value.strip())
    except ValueError:
        raise ValidationError(field, f"{value!r} is not a valid IP address") from None
    if getattr(addr, "scope_id", None) is not None:
        raise ValidationError(field, f"{value!r}: a zone index (%...) has no place here")
    if addr.is_unspecified or addr.is_multicast or addr.is_loopback:
        raise ValidationError(field, f"{addr} is not a usable unicast address")
    return addr


def cidr(field: str, value: str) -> IPNetwork:
    text = value.strip()
    if "/" not in text:
        raise ValidationError(field, f"{value!r} needs a prefix length, e.g. 10.0.0.0/24")
    try:
        net = ipaddress.ip_network(text)
    except ValueError:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValidationError(field, f"{value!r} is not a valid CIDR") from None
        raise ValidationError(field, f"{value} has host bits set (did you mean {loose}?)") from None
    if getattr(net.network_address, "scope_id", None) is not None:
        raise ValidationError(field, f"{value!r}: a zone index (%...) has no place here")
    if net.is_multicast or net.is_loopback or net.network_address.is_unspecified:
        raise ValidationError(field, f"{net} is not a usable unicast range")
    if net.prefixlen > MAX_PREFIX[net.version]:
        raise ValidationError(
            field, f"{net} is too small: need /{MAX_PREFIX[net.version]} or larger"
        )
    return net


_T = TypeVar("_T")
_Versioned = TypeVar("_Versioned", IPAddress, IPNetwork)


def one_per_family(field: str, values: Iterable[_Versioned]) -> tuple[_Versioned, ...]:
    seen: dict[int, _Versioned] = {}
    for v in values:
        if v.version in seen:
            raise ValidationError(
                field, f"at most one IPv{v.version} value ({seen[v.version]} and {v})"
            )
        seen[v.version] = v
    return tuple(sorted(seen.values(), key=lambda v: v.version))


def endpoint(value: str) -> str:
    """HOST:PORT, with an IPv6 host in brackets; returns it normalised."""
    m = re.match(r"^\[([^\]]+)\]:(\d+)$", value) or re.match(r"^([^:\[\]]+):(\d+)$", value)
    if not m:
        raise ValidationError("endpoint", f"{value!r} is not HOST:PORT (IPv6 as [addr]:port)")
    host, port_text = m.group(1), m.group(2)
    port_text = port_text.lstrip("0") or "0"
    if len(port_text) > 5:  # also spares int() thousands of digits
        shown = port_text if len(port_text) <= 12 else port_text[:12] + "..."
        raise ValidationError("endpoint", f"port {shown} is out of range {PORT_MIN}..{PORT_MAX}")
    port("endpoint", int(port_text))
    if value.startswith("["):
        try:
            host = str(ipaddress.IPv6Address(host))
        except ValueError:
            raise ValidationError("endpoint", f"{host!r} is not an IPv6 address") from None
        return f"[{host}]:{int(port_text)}"
    if not _HOSTNAME_RE.match(host):
        raise ValidationError("endpoint", f"{host!r} is not a valid host name or IPv4 address")
    return f"{host}:{int(port_text)}"


def public_key(value: str) -> str:
    return keys.parse_key(value, "public-key")


def duration(field: str, value: str) -> int:
    """'30d', '12h', '90m', '1w2d', '3600s' -> seconds (> 0)."""
    text = value.strip().lower()
    if not _DURATION_RE.match(text):
        raise ValidationError(field, f"{value!r} is not a duration like 30d, 12h or 90m")
    parts = re.findall(r"([0-9]+)([wdhms])", text)
    # Digits first: int() refuses thousands of them, and SQLite stores at most 64 bits.
    if (
        any(len(n.lstrip("0")) > 12 for n, _ in parts)
        or sum(int(n) * _UNIT_SECONDS[u] for n, u in parts) > DURATION_MAX
    ):
        raise ValidationError(field, f"{value!r} is longer than {DURATION_MAX // 86400}d")
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds <= 0:
        raise ValidationError(field, "must be longer than zero")
    return seconds


def when(field: str, value: str, now: float) -> float:
    """An ISO 8601 date/time (UTC unless it names a zone) or a duration from `now`."""
    text = value.strip()
    if _DURATION_RE.match(text.lower()):
        return now + duration(field, text)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            field, f"{value!r} is neither ISO 8601 nor a duration like 30d"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    ts = dt.timestamp()
    if ts <= now:
        raise ValidationError(field, f"{value} is in the past")
    if ts > now + DURATION_MAX:  # also keeps it printable (datetime ends at year 9999)
        raise ValidationError(field, f"{value} is more than {DURATION_MAX // 86400}d away")
    return ts


def peer_ref(value: str) -> tuple[str, str]:
    tenant, sep, peer = value.partition("/")
    if not sep:
        raise ValidationError("peer", f"expected TENANT/PEER, got {value!r}")
    return name("tenant", tenant), name("peer", peer)


# --- lookups --------------------------------------------------------------------


def find_interface(state: State, iface: str) -> Interface:
    for i in state.interfaces:
        if i.name == iface:
            return i
    raise NotFoundError("interface", f"no interface named {iface!r}")


def find_tenant(state: State, tenant: str) -> Tenant:
    for t in state.tenants:
        if t.name == tenant:
            return t
    raise NotFoundError("tenant", f"no tenant named {tenant!r}")


def find_peer(state: State, tenant: str, peer: str) -> Peer:
    find_tenant(state, tenant)
    for p in state.peers:
        if p.tenant == tenant and p.name == peer:
            return p
    raise NotFoundError("peer", f"no peer named {tenant}/{peer}")


def pick_interface(state: State, requested: str | None) -> Interface:
    """`--interface` may be left out when exactly one interface exists."""
    if requested is not None:
        return find_interface(state, name("interface", requested))
    if len(state.interfaces) == 1:
        return state.interfaces[0]
    if not state.interfaces:
        raise ValidationError(
            "interface", "no interface exists yet; run `wggw interface add` first"
        )
    names = ", ".join(i.name for i in state.interfaces)
    raise ValidationError("interface", f"required when several interfaces exist ({names})")


# --- whole-object checks --------------------------------------------------------


def check_interface(state: State, iface: Interface) -> None:
    name("interface", iface.name)
    if any(i.name == iface.name for i in state.interfaces):
        raise ValidationError("interface", f"{iface.name!r} already exists")
    port("listen-port", iface.listen_port)
    for other in state.interfaces:
        if other.listen_port == iface.listen_port:
            raise ValidationError(
                "listen-port", f"{iface.listen_port} is already used by interface {other.name}"
            )
    endpoint(iface.endpoint)
    mtu(iface.mtu)


def check_tenant(state: State, tenant: Tenant) -> None:
    name("tenant", tenant.name)
    if any(t.name == tenant.name for t in state.tenants):
        raise ValidationError("tenant", f"{tenant.name!r} already exists")
    find_interface(state, tenant.interface)
    _check_pools(state, tenant)
    _check_egress(state, tenant)
    families = {e.version for e in tenant.egress}
    for hop in tenant.via:
        if hop.version not in families:
            raise ValidationError(
                "via", f"IPv{hop.version} next hop {hop} needs an IPv{hop.version} --egress"
            )
    if tenant.uplink is not None:
        device("uplink", tenant.uplink)
    if not naming.TABLE_MIN <= tenant.table <= naming.TABLE_MAX:
        raise ValidationError(
            "table", f"{tenant.table} is outside {naming.TABLE_MIN}-{naming.TABLE_MAX}"
        )


def _check_pools(state: State, tenant: Tenant) -> None:
    if not tenant.pools:
        raise ValidationError("pool", "at least one --pool is required")
    one_per_family("pool", tenant.pools)
    for pool in tenant.pools:
        for other in state.tenants:
            for theirs in other.pools:
                if pool.version == theirs.version and pool.overlaps(theirs):
                    raise ValidationError(
                        "pool", f"{pool} overlaps pool {theirs} of tenant {other.name}"
                    )


def _check_egress(state: State, tenant: Tenant) -> None:
    if not tenant.egress:
        raise ValidationError("egress", "at least one --egress is required")
    one_per_family("egress", tenant.egress)
    for addr in tenant.egress:
        if tenant.pool(addr.version) is None:
            raise ValidationError(
                "egress", f"IPv{addr.version} egress {addr} needs an IPv{addr.version} --pool"
            )
        for other in state.tenants:
            if addr in other.egress:
                raise ValidationError(
                    "egress", f"{addr} is already the egress of tenant {other.name}"
                )
        for owner in (*state.tenants, tenant):
            for pool in owner.pools:
                if addr in pool:
                    raise ValidationError(
                        "egress", f"{addr} lies inside pool {pool} of tenant {owner.name}"
                    )


def check_new_peer(peer: Peer, exists: bool, user: tuple[str, str] | None) -> None:
    """A new peer's checks from facts a store answers with point queries (its tenant exists):
    whether the name is taken, and who holds the key (`key_user`'s answer)."""
    name("peer", peer.name)
    if exists:
        raise ValidationError("peer", f"{peer.ref} already exists")
    key_free(user)
    keepalive(peer.keepalive)


def key_user(state: State, key: str) -> tuple[str, str] | None:
    """("peer", ref) if a peer holds `key` as current or retiring key, ("interface", name)
    if it is a gateway's key, else None (the answer of `store.Tx.key_user` from a State)."""
    for p in state.peers:
        if key == p.public_key or (p.retiring is not None and key == p.retiring.public_key):
            return ("peer", p.ref)
    for i in state.interfaces:
        if key == i.public_key:
            return ("interface", i.name)
    return None


def key_free(user: tuple[str, str] | None, field: str = "public-key") -> None:
    if user is None:
        return
    kind, holder = user
    if kind == "peer":
        raise ValidationError(field, f"already used by peer {holder}")
    raise ValidationError(field, f"is the public key of interface {holder}")


def found(field: str, obj: _T | None, what: str) -> _T:
    """`obj` (a point read's answer), or NotFoundError in the words of the find_* functions."""
    if obj is None:
        raise NotFoundError(field, f"no {field} named {what}")
    return obj

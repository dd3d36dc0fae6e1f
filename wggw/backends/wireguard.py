"""The one interface to a WireGuard data plane (`WgBackend`) and the link-level helpers both
backends share (ownership alias, link listing, link deletion). Choosing a backend is
backends/select.py's job (it imports the backends; they import only this).

Backends work in the current network namespace only; the caller picks the namespace.
pyroute2 is imported inside functions so that commands which never touch the kernel
do not pay for its import.
"""

from __future__ import annotations

import abc
import errno
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from wggw.core import naming
from wggw.core.endpoints import KICK_KEEPALIVE
from wggw.core.errors import BackendError
from wggw.core.keys import Secret
from wggw.core.wgtypes import WgDeviceState, WgPeerSpec

# A PSK of 32 zero bytes means "no PSK" in both the UAPI and genetlink protocols.
ZERO_KEY_B64 = "A" * 43 + "="


class PeersRequest:
    """A prepared peers' change of one device (WgBackend.prepare_peers). Its payload may hold
    keys: its repr never shows it (a traceback printer with locals would)."""

    __slots__ = ("ifname", "payload")

    def __init__(self, ifname: str, payload: Any):
        self.ifname = ifname
        self.payload = payload

    def __repr__(self) -> str:
        return f"<peers request for {self.ifname}>"


class WgBackend(abc.ABC):
    """What the reconciler needs from a WireGuard implementation. Keys are base64."""

    kind: str  # "kernel" | "userspace"

    @abc.abstractmethod
    def list_devices(self) -> list[str]:
        """Names of the WireGuard devices in this netns that wggw owns."""

    @abc.abstractmethod
    def observe(self, ifname: str, only: Iterable[str] | None = None) -> WgDeviceState | None:
        """The device's configuration and peers (merged by public key); None if absent.
        With `only` (public keys), just those peers: a one-peer change reads no others."""

    @abc.abstractmethod
    def create(self, ifname: str) -> None:
        """Create the device and mark it with naming.LINK_ALIAS (no up/MTU/addresses)."""

    @abc.abstractmethod
    def delete(self, ifname: str) -> None:
        """Remove the device; absent counts as done."""

    @abc.abstractmethod
    def configure(self, ifname: str, private_key: Secret | None, listen_port: int) -> None:
        """Set the device's listen port, and its private key unless None (an unchanged key must
        not be sent again: the kernel would expire every session if it differed by clamping)."""

    @abc.abstractmethod
    def set_peers(self, ifname: str, upsert: Sequence[WgPeerSpec], remove: Sequence[str]) -> None:
        """Add/replace `upsert` peers and drop `remove` keys without touching any other peer."""

    def prepare_peers(
        self, ifname: str, upsert: Sequence[WgPeerSpec], remove: Sequence[str]
    ) -> PeersRequest:
        """`set_peers`'s request, built now and sent by `send_peers` later: a cold apply
        builds the request for 10,000 peers while the head of its plan goes out, so the
        device gets its first peer the moment it may (a backend that has nothing to build
        ahead keeps the arguments). Touches nothing."""
        return PeersRequest(ifname, (tuple(upsert), tuple(remove)))

    def send_peers(self, request: PeersRequest) -> None:
        """Carry out a request of `prepare_peers`, as `set_peers` would have."""
        upsert, remove = request.payload
        self.set_peers(request.ifname, upsert, remove)

    def kick(self, ifname: str, peers: Sequence[WgPeerSpec]) -> None:
        """Make the device start a handshake with each of `peers` now: turning a persistent
        keepalive on sends one keepalive at once (kernel and wireguard-go alike), and the
        handshake it needs keeps retrying for 90 s; then the peers are set back as given."""
        if peers:
            self.set_peers(ifname, [replace(p, keepalive=KICK_KEEPALIVE) for p in peers], [])
            self.set_peers(ifname, peers, [])


# --- helpers shared by both backends ---------------------------------------------------


def normalise_allowed_ips(cidrs: Iterable[str]) -> tuple[str, ...]:
    """The form wgtypes uses: canonical CIDR strings, de-duplicated, sorted."""
    try:
        return tuple(
            sorted({_canonical_v4(c) or str(ipaddress.ip_network(c, strict=False)) for c in cidrs})
        )
    except ValueError as e:
        raise BackendError(f"WireGuard allowed IP: {e}") from e


def _canonical_v4(cidr: str) -> str | None:
    """`cidr` itself if it is already a canonical IPv4 network ("a.b.c.d/n", no host bits),
    else None (then ipaddress decides). A cold apply sends 10,000 of them, and this check
    costs a fifth of ipaddress's parse."""
    addr, _, plen = cidr.partition("/")
    if not (plen.isascii() and plen.isdigit()) or plen != str(int(plen)) or int(plen) > 32:
        return None
    try:
        packed = socket.inet_pton(socket.AF_INET, addr)
    except OSError:
        return None
    host = int.from_bytes(packed, "big") & ((1 << (32 - int(plen))) - 1)
    return cidr if not host and socket.inet_ntop(socket.AF_INET, packed) == addr else None


def format_endpoint(addr: str, port: int) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def check_name(ifname: str) -> None:
    """Names also become socket and pid file paths: refuse anything that is not a plain name."""
    if not naming.valid_name(ifname):
        raise BackendError(f"WireGuard device {ifname!r}: not a valid interface name")


def owned_links(kinds: Sequence[str]) -> list[str]:
    """Links in this netns of one of `kinds` that carry wggw's alias (an nldump dump, so
    `plan` and `status` do not import pyroute2)."""
    return sorted(
        link["IFLA_IFNAME"]
        for link in _links("WireGuard devices: listing links failed")
        if link.get("IFLA_INFO_KIND") in kinds and link.get("IFLA_IFALIAS") == naming.LINK_ALIAS
    )


def link_info(ifname: str) -> tuple[str | None, str | None] | None:
    """(kind, alias) of the link called `ifname` in this netns, None if there is none."""
    for link in _links(f"WireGuard device {ifname}: reading link failed"):
        if link.get("IFLA_IFNAME") == ifname:
            return (link.get("IFLA_INFO_KIND"), link.get("IFLA_IFALIAS"))
    return None


def _links(what: str) -> list[dict]:
    from wggw.backends.netlink import dump as nldump

    try:
        return nldump.links()
    except (OSError, BackendError) as e:
        raise BackendError(f"{what}: {e}") from e


def set_alias(ifname: str) -> None:
    """Mark the link as wggw's (IFLA_IFALIAS), so ownership is visible in the kernel (through
    the batch encoder: a cold apply then does without importing pyroute2)."""
    from wggw.backends.netlink import batch as nlbatch

    what = f"WireGuard device {ifname}: setting alias failed"
    try:
        index = socket.if_nametoindex(ifname)
    except OSError as e:
        raise BackendError(f"{what}: {e}") from e
    failures = nlbatch.send([nlbatch.link(index, what, alias=naming.LINK_ALIAS)])
    if failures:
        raise BackendError(nlbatch.describe(failures[0]))


def delete_link(ifname: str) -> None:
    """Remove the link; ENODEV means it is already gone."""
    from pyroute2 import IPRoute, NetlinkError

    try:
        with IPRoute(ext_ack=True) as ipr:
            ipr.link("del", ifname=ifname)
    except NetlinkError as e:
        if e.code != errno.ENODEV:
            raise BackendError(f"WireGuard device {ifname}: deleting link failed: {e}") from e
    except OSError as e:
        raise BackendError(f"WireGuard device {ifname}: deleting link failed: {e}") from e

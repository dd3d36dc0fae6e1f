"""WireGuard device and peer values shared by the planner and both WireGuard backends
(kernel genetlink and wireguard-go UAPI). Pure data, no I/O. Keys are base64."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from wggw.core.keys import Secret


@dataclass(frozen=True)
class WgPeerSpec:
    """A peer as wggw wants it on the device."""

    public_key: str
    psk: Secret | None
    allowed_ips: tuple[str, ...]  # normalised CIDR strings, sorted ("10.0.0.2/32", ...)
    keepalive: int | None = None  # seconds; None/0 = off
    # Where to reach the peer, set only when the peer is (re)created with its remembered
    # endpoint (core/endpoints.py); never compared: the live endpoint follows the client.
    endpoint: str | None = None


@dataclass(frozen=True)
class WgDeviceSpec:
    name: str
    private_key: Secret
    listen_port: int
    peers: tuple[WgPeerSpec, ...] = ()


@dataclass(frozen=True)
class WgPeerState:
    """A peer as observed on a live device (config plus runtime counters)."""

    public_key: str
    psk: Secret | None
    allowed_ips: tuple[str, ...]
    keepalive: int | None = None
    endpoint: str | None = None
    last_handshake: float = 0.0  # unix time, 0 = never
    rx_bytes: int = 0
    tx_bytes: int = 0

    def spec(self) -> WgPeerSpec:
        return WgPeerSpec(self.public_key, self.psk, self.allowed_ips, self.keepalive or None)

    def matches(self, want: WgPeerSpec) -> bool:
        """Configured as `want`? Allowed IPs are compared as observed first (wireguard-go and
        the kernel print them canonically, so that settles it for nearly every peer) and
        only normalised when the texts differ. Both values are immutable, so a match is
        remembered on this one for that very `want` object: the agent's rounds see the same
        pair again for every unchanged peer (wg_uapi.BlockMemo, the kept desired state)."""
        if self.__dict__.get("_matched") is want:
            return True
        if (
            self.public_key != want.public_key
            or (self.keepalive or None) != (want.keepalive or None)
            or self.psk != want.psk
        ):
            return False
        if self.allowed_ips == want.allowed_ips or canonical(self.allowed_ips) == canonical(
            want.allowed_ips
        ):
            object.__setattr__(self, "_matched", want)  # not a field: eq, hash, repr ignore it
            return True
        return False


def canonical(cidrs: tuple[str, ...]) -> tuple[str, ...]:
    """CIDR strings in one spelling (masked, compressed), de-duplicated and sorted."""
    try:
        return tuple(sorted({str(ipaddress.ip_network(c, strict=False)) for c in cidrs}))
    except ValueError:
        return cidrs  # not comparable as networks: only an identical text matches


@dataclass(frozen=True)
class WgDeviceState:
    name: str
    public_key: str | None  # derived from the device's private key; None if unset
    listen_port: int
    peers: dict[str, WgPeerState] = field(default_factory=dict)  # by public key
    fwmark: int = 0  # wggw sets none: any other value is drift

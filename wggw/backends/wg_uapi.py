"""A small client of WireGuard's cross-platform userspace API (wireguard.com/xplatform),
the unix socket that wireguard-go serves at /var/run/wireguard/<ifname>.sock.

`get=1` is parsed as a stream of lines into a `WgDeviceState`; `set=1` sends one request
(one transaction under wireguard-go's IPC lock). Keys are hex on the wire and base64
everywhere else. Request bodies carry secrets: they are never logged nor put in errors.
"""

from __future__ import annotations

import os
import socket
from typing import Iterable, Iterator, Optional, Sequence

from .. import naming
from ..errors import BackendError
from ..keys import Secret, key_from_hex, key_hex
from ..wgtypes import WgDeviceState, WgPeerSpec, WgPeerState
from .wireguard import normalise_allowed_ips

TIMEOUT = 10.0  # seconds; a `get` of 10k peers takes ~60 ms, so this only catches a hung daemon
ZERO_HEX = "0" * 64


def socket_path(ifname: str) -> str:
    return os.path.join(naming.WG_SOCKET_DIR, f"{ifname}.sock")


class UapiClient:
    """One device's UAPI socket; each call opens its own connection (the protocol is
    stateless, and a failed `set` may leave unread lines on a connection)."""

    def __init__(self, ifname: str, path: Optional[str] = None):
        self.ifname = ifname
        self.path = path or socket_path(ifname)

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(TIMEOUT)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        return sock

    def get(self) -> WgDeviceState:
        """The device's configuration and runtime state."""
        try:
            with self._connect() as sock, sock.makefile("rb") as stream:
                sock.sendall(b"get=1\n\n")
                return parse_get(self.ifname, _lines(stream))
        except OSError as e:
            raise BackendError(f"wireguard-go {self.ifname}: UAPI get failed: {e}") from e

    def set(self, lines: Iterable[str]) -> None:
        """Send one `set=1` request made of `lines` (without the terminating blank line)."""
        body = "set=1\n" + "".join(f"{line}\n" for line in lines) + "\n"
        try:
            with self._connect() as sock, sock.makefile("rb") as stream:
                sock.sendall(body.encode())
                reply = list(_lines(stream))
        except OSError as e:
            raise BackendError(f"wireguard-go {self.ifname}: UAPI set failed: {e}") from e
        finally:
            # The body holds hex keys: keep it out of frame locals that a traceback
            # printer with locals (rich, typer) would show.
            del body
        code = _errno(reply)
        if code != 0:
            # wireguard-go reports negative errnos (-22 = EINVAL); name it either way.
            name = os.strerror(abs(code))
            raise BackendError(f"wireguard-go {self.ifname}: UAPI set failed: errno={code} ({name})")


def _lines(stream) -> Iterator[str]:
    """Lines of one response, up to (not including) the blank line that ends it."""
    for raw in stream:
        line = raw.decode("ascii", "replace").rstrip("\n")
        if not line:
            return
        yield line
    raise OSError("connection closed before the end of the response")


def _errno(reply: Sequence[str]) -> int:
    for line in reply:
        key, _, value = line.partition("=")
        if key == "errno":
            return int(value)
    raise OSError(f"no errno in response {reply!r}")


def parse_get(ifname: str, lines: Iterable[str]) -> WgDeviceState:
    """Fold the `get=1` key=value stream into a device state; `public_key=` starts a peer."""
    device: dict = {"listen_port": 0, "public_key": None}
    peers: dict[str, dict] = {}
    peer: Optional[dict] = None
    code = None
    for line in lines:
        key, _, value = line.partition("=")
        if key == "errno":
            code = int(value)
        elif key == "public_key":
            pub = key_from_hex(value)
            # Merge by key: the protocol never repeats a peer, but merging costs nothing.
            peer = peers.setdefault(pub, {"public_key": pub, "allowed_ips": []})
        elif peer is not None:
            _peer_field(peer, key, value)
        elif key == "private_key":
            device["public_key"] = _public_of_hex(value)
        elif key == "listen_port":
            device["listen_port"] = int(value)
    if code != 0:
        raise OSError(f"errno={code}")
    return WgDeviceState(
        name=ifname, public_key=device["public_key"], listen_port=device["listen_port"],
        peers={pub: _peer_state(p) for pub, p in peers.items()})


def _peer_field(peer: dict, key: str, value: str) -> None:
    if key == "allowed_ip":
        peer["allowed_ips"].append(value)
    elif key == "preshared_key":
        peer["psk"] = None if value == ZERO_HEX else Secret(key_from_hex(value))
    elif key == "endpoint":
        peer["endpoint"] = value
    elif key == "persistent_keepalive_interval":
        peer["keepalive"] = int(value) or None
    elif key == "last_handshake_time_sec":
        peer["hs_sec"] = int(value)
    elif key == "last_handshake_time_nsec":
        peer["hs_nsec"] = int(value)
    elif key in ("rx_bytes", "tx_bytes"):
        peer[key] = int(value)
    # protocol_version and keys added by later protocol versions are ignored on purpose


def _peer_state(p: dict) -> WgPeerState:
    sec, nsec = p.get("hs_sec", 0), p.get("hs_nsec", 0)
    return WgPeerState(
        public_key=p["public_key"], psk=p.get("psk"),
        allowed_ips=normalise_allowed_ips(p["allowed_ips"]), keepalive=p.get("keepalive"),
        endpoint=p.get("endpoint"), last_handshake=sec + nsec / 1e9 if sec else 0.0,
        rx_bytes=p.get("rx_bytes", 0), tx_bytes=p.get("tx_bytes", 0))


def _public_of_hex(private_hex: str) -> str:
    from ..keys import public_of

    return public_of(Secret(key_from_hex(private_hex)))


# --- request bodies -------------------------------------------------------------------

def device_lines(private_key: Secret, listen_port: int) -> list[str]:
    return [f"private_key={private_key.hex()}", f"listen_port={int(listen_port)}"]


def peer_lines(spec: WgPeerSpec) -> list[str]:
    """Create or update one peer; every field is set so the result does not depend on
    what was there before (PSK cleared with zeros, keepalive 0 = off)."""
    psk = spec.psk.hex() if spec.psk is not None else ZERO_HEX
    lines = [
        f"public_key={key_hex(spec.public_key)}",
        f"preshared_key={psk}",
        f"persistent_keepalive_interval={int(spec.keepalive or 0)}",
        "replace_allowed_ips=true",
    ]
    lines += [f"allowed_ip={cidr}" for cidr in normalise_allowed_ips(spec.allowed_ips)]
    return lines


def remove_lines(public_key: str) -> list[str]:
    return [f"public_key={key_hex(public_key)}", "remove=true"]

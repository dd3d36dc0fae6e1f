"""A small client of WireGuard's cross-platform userspace API (wireguard.com/xplatform),
the unix socket that wireguard-go serves at /var/run/wireguard/<ifname>.sock.

`get=1` is parsed as a stream of lines into a `WgDeviceState`; `set=1` sends one request
(one transaction under wireguard-go's IPC lock). Keys are hex on the wire and base64
everywhere else. Request bodies carry secrets: they are never logged nor put in errors.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Iterator, Sequence

from wggw.core import naming
from wggw.core.errors import BackendError
from wggw.core.keys import Secret, clamped, key_from_hex, key_hex
from wggw.core.wgtypes import WgDeviceState, WgPeerSpec, WgPeerState

TIMEOUT = 10.0  # seconds; a `get` of 10k peers takes ~60 ms, so this only catches a hung daemon
# wireguard-go answers a `set` only when all of it is done: a cold set of 50,000 peers (one
# transaction) took longer than TIMEOUT on a loaded 2-core machine. The wait grows with the request.
SET_SECONDS_PER_LINE = 0.002
ZERO_HEX = "0" * 64


def socket_path(ifname: str) -> str:
    return os.path.join(naming.WG_SOCKET_DIR, f"{ifname}.sock")


class UapiClient:
    """One device's UAPI socket; each call opens its own connection (the protocol is
    stateless, and a failed `set` may leave unread lines on a connection)."""

    def __init__(self, ifname: str, path: str | None = None):
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

    def get(self, only: Iterable[str] | None = None) -> WgDeviceState:
        """The device's configuration and runtime state; with `only` (base64 public keys),
        just those peers (wireguard-go always sends every peer: the others are skipped
        unparsed, which is most of the cost at 10,000 peers)."""
        try:
            with self._connect() as sock:
                sock.sendall(b"get=1\n\n")
                text = _response(sock)
        except OSError as e:
            _MEMOS.pop(self.path, None)
            raise BackendError(f"wireguard-go {self.ifname}: UAPI get failed: {e}") from e
        memo = None if only is not None else _MEMOS.setdefault(self.path, BlockMemo())
        try:
            return parse_get(self.ifname, text, only, memo)
        except (OSError, ValueError) as e:
            raise BackendError(f"wireguard-go {self.ifname}: UAPI get failed: {e}") from e

    def set(self, lines: Iterable[str]) -> None:
        """Send one `set=1` request made of `lines` (without the terminating blank line)."""
        self.send(SetBody(lines))

    def send(self, body: SetBody, expect: Sequence[WgPeerSpec] = ()) -> None:
        """Send one `set=1` request built beforehand, and check wireguard-go's answer. With
        `expect` (the peers the request sets anew), the next full `get` finds them parsed
        already if they show exactly as set (`BlockMemo.expect`), which is worked out while
        wireguard-go applies the request."""
        try:
            with self._connect() as sock, sock.makefile("rb") as stream:
                sock.settimeout(TIMEOUT + SET_SECONDS_PER_LINE * body.lines)
                _room_for(sock, len(body.data))
                sock.sendall(body.data)
                if expect:
                    _MEMOS.setdefault(self.path, BlockMemo()).expect(expect)
                reply = list(_lines(stream))
        except OSError as e:
            raise BackendError(f"wireguard-go {self.ifname}: UAPI set failed: {e}") from e
        try:
            code = _errno(reply)
        except (OSError, ValueError) as e:
            raise BackendError(f"wireguard-go {self.ifname}: UAPI set failed: {e}") from None
        if code != 0:
            # wireguard-go reports negative errnos (-22 = EINVAL); name it either way.
            name = os.strerror(abs(code))
            raise BackendError(
                f"wireguard-go {self.ifname}: UAPI set failed: errno={code} ({name})"
            )


class SetBody:
    """The encoded `set=1` request of `lines`. It holds hex keys: its repr never shows them
    (a traceback printer with locals, such as rich's, would)."""

    __slots__ = ("data", "lines")

    def __init__(self, lines: Iterable[str]):
        lines = list(lines)
        self.lines = len(lines) + 2
        self.data = "\n".join(["set=1", *lines, "", ""]).encode()

    def __repr__(self) -> str:
        return f"<UAPI set request: {self.lines} lines>"


SO_SNDBUFFORCE = 32
MAX_SNDBUF = 64 << 20


def _room_for(sock: socket.socket, size: int) -> None:
    """A send buffer that takes the whole request at once: sent in pieces, each piece needs
    this thread back (the GIL, while a cold apply's other thread is busy), and wireguard-go,
    which applies the request as it reads it, would wait for it. Best effort: without
    CAP_NET_ADMIN the buffer stops at the host's wmem_max, and sendall still sends it all."""
    want = min(MAX_SNDBUF, 2 * size)  # the kernel counts its own overhead per buffer
    if want <= sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF):
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, want)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, want)


def _lines(stream) -> Iterator[str]:
    """Lines of one response, up to (not including) the blank line that ends it."""
    for raw in stream:
        line = raw.decode("ascii", "replace").rstrip("\n")
        if not line:
            return
        yield line
    raise OSError("connection closed before the end of the response")


def _response(sock: socket.socket) -> str:
    """A whole `get` response, read in large chunks; a blank line ends it (no line of the
    protocol is empty, so "\n\n" occurs only there)."""
    chunks: list[bytes] = []
    tail = b""
    while True:
        data = sock.recv(1 << 18)
        if not data:
            raise OSError("connection closed before the end of the response")
        chunks.append(data)
        tail = (tail + data)[-2:]
        if tail == b"\n\n":
            return b"".join(chunks).decode("ascii", "replace")


def _errno(reply: Sequence[str]) -> int:
    for line in reply:
        key, _, value = line.partition("=")
        if key == "errno":
            return int(value)
    # The reply is not quoted: a UAPI response can carry key material.
    raise OSError(f"no errno in a {len(reply)}-line response")


def parse_get(
    ifname: str, text: str, only: Iterable[str] | None = None, memo: BlockMemo | None = None
) -> WgDeviceState:
    """Fold a `get=1` response (key=value lines; `public_key=` starts a peer) into a device
    state. Peer blocks are cut apart with str.split, and with `only` the unwanted ones are
    never looked at. With `memo` (the same device's last full dump), a peer whose block is
    the very text it was then is not parsed again."""
    head, sep, code = ("\n" + text.rstrip("\n")).rpartition("\nerrno=")
    if not sep or code != "0":
        raise OSError(f"errno={code if sep else 'missing'}")
    device = head.split("\npublic_key=", 1)[0]
    peers = memo.peers(head) if memo is not None and only is None else None
    if peers is None:
        by_key = _blocks(head) if only is None else _found_blocks(head, [key_hex(k) for k in only])
        peers = {
            pub: _peer_state(pub, "\n".join(parts))
            for pub, parts in ((key_from_hex(h), p) for h, p in by_key.items())
        }
    fields = dict(line.partition("=")[::2] for line in device.split("\n") if line)
    private = fields.get("private_key")
    return WgDeviceState(
        name=ifname,
        public_key=_public_of_hex(private) if private and private != ZERO_HEX else None,
        listen_port=int(fields.get("listen_port", 0)),
        fwmark=int(fields.get("fwmark", 0)),
        peers=peers,
    )


class BlockMemo:
    """Each peer's parsed state by the exact text of its block in a device's last full dump.
    The parse is a function of that text alone, so a block that is byte for byte the same
    gives the same state: only peers whose configuration or counters moved are parsed again
    (an idle gateway of 50,000 peers: none; parsing them all took ~0.35 s of each resync).
    Every dump replaces the memo, so it holds the current peers only."""

    def __init__(self) -> None:
        self.states: dict[str, WgPeerState] = {}

    def expect(self, specs: Iterable[WgPeerSpec]) -> None:
        """Add the block each of `specs` shows right after it is set anew (no endpoint, no
        handshake, no traffic yet), with the state that block parses to (tested against
        `_peer_state`). A cold apply's verify then parses none of its 10,000 new peers when
        the device holds them exactly as sent; a block that differs in any byte (another
        wireguard-go's layout, a peer changed since) is parsed as ever. Each state is marked
        as matching its very spec (WgPeerState.matches), from which it is built."""
        states = self.states
        for spec in specs:
            if spec.endpoint:
                continue  # wireguard-go shows an endpoint as it resolved it: parse that
            psk = spec.psk.hex() if spec.psk is not None else ZERO_HEX
            block = (
                f"{key_hex(spec.public_key)}\npreshared_key={psk}\nprotocol_version=1\n"
                "last_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=0\n"
                f"rx_bytes=0\npersistent_keepalive_interval={int(spec.keepalive or 0)}"
            )
            block += "".join(f"\nallowed_ip={cidr}" for cidr in spec.allowed_ips)
            state = WgPeerState(
                public_key=spec.public_key,
                psk=None if psk == ZERO_HEX else spec.psk,
                allowed_ips=tuple(sorted(set(spec.allowed_ips))),
                keepalive=spec.keepalive or None,
            )
            object.__setattr__(state, "_matched", spec)
            states[block] = state

    def peers(self, head: str) -> dict[str, WgPeerState] | None:
        """The peers of `head` by public key; None if a peer occurs twice (the protocol never
        does that: the caller's merging parse takes it then)."""
        blocks = head.split("\npublic_key=")[1:]
        old, new, peers = self.states, {}, {}
        for block in blocks:
            state = old.get(block)
            if state is None:
                hexkey, _, rest = block.partition("\n")
                state = _peer_state(key_from_hex(hexkey), rest)
            new[block] = state
            peers[state.public_key] = state
        if len(peers) != len(blocks):
            return None
        self.states = new
        return peers


# One memo per UAPI socket, for this process's life (the agent's resyncs and scrapes; a
# command's apply reads each device twice). A failed read drops it.
_MEMOS: dict[str, BlockMemo] = {}


def _blocks(head: str) -> dict[str, list[str]]:
    """Every peer's lines by hex key (the protocol never repeats a peer; merged anyway)."""
    by_key: dict[str, list[str]] = {}
    for block in head.split("\npublic_key=")[1:]:
        hexkey, _, rest = block.partition("\n")
        by_key.setdefault(hexkey, []).append(rest)
    return by_key


def _found_blocks(head: str, wanted: list[str]) -> dict[str, list[str]]:
    """The lines of the wanted peers only, found with str.find: the other 10,000 peers of a
    big device are never split or copied."""
    by_key: dict[str, list[str]] = {}
    for hexkey in wanted:
        marker = f"\npublic_key={hexkey}\n"
        start = head.find(marker)
        while start >= 0:
            body = start + len(marker)
            end = head.find("\npublic_key=", body)
            by_key.setdefault(hexkey, []).append(head[body:] if end < 0 else head[body:end])
            start = head.find(marker, body)
    return by_key


def _peer_state(pub: str, block: str) -> WgPeerState:
    """One peer's lines. Allowed IPs stay as wireguard-go prints them (canonical, as Go
    formats prefixes): the planner normalises only when they differ from the wanted ones."""
    allowed: list[str] = []
    psk, endpoint, keepalive, sec, nsec, rx, tx = None, None, None, 0, 0, 0, 0
    for line in block.split("\n"):
        key, _, value = line.partition("=")
        if key == "allowed_ip":
            allowed.append(value)
        elif key == "preshared_key":
            psk = None if value == ZERO_HEX else Secret._trusted(key_from_hex(value))
        elif key == "endpoint":
            endpoint = value
        elif key == "persistent_keepalive_interval":
            keepalive = int(value) or None
        elif key == "last_handshake_time_sec":
            sec = int(value)
        elif key == "last_handshake_time_nsec":
            nsec = int(value)
        elif key == "rx_bytes":
            rx = int(value)
        elif key == "tx_bytes":
            tx = int(value)
        # protocol_version and keys added by later protocol versions are ignored on purpose
    return WgPeerState(
        public_key=pub,
        psk=psk,
        allowed_ips=tuple(sorted(set(allowed))),
        keepalive=keepalive,
        endpoint=endpoint,
        last_handshake=sec + nsec / 1e9 if sec else 0.0,
        rx_bytes=rx,
        tx_bytes=tx,
    )


def _public_of_hex(private_hex: str) -> str:
    from wggw.core.keys import public_of

    return public_of(Secret(key_from_hex(private_hex)))


# --- request bodies -------------------------------------------------------------------


def device_lines(private_key: Secret | None, listen_port: int) -> list[str]:
    """The port and fwmark 0, and the key (clamped, as WireGuard keeps it) unless None =
    unchanged."""
    key = [] if private_key is None else [f"private_key={clamped(private_key).hex()}"]
    return key + [f"listen_port={int(listen_port)}", "fwmark=0"]


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
    if spec.endpoint:
        lines.insert(1, f"endpoint={spec.endpoint}")
    # As given: a spec's allowed IPs are canonical and sorted already (compiled by
    # core/desired.py, or read back from a device), and normalising 10,000 of them again
    # cost a fifth of a cold apply's request.
    lines += [f"allowed_ip={cidr}" for cidr in spec.allowed_ips]
    return lines


def remove_lines(public_key: str) -> list[str]:
    return [f"public_key={key_hex(public_key)}", "remove=true"]

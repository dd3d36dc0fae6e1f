"""The last endpoint of each peer, remembered across restarts of a WireGuard device (pure).

A restarted device (wireguard-go killed, or restarted by `apply`) knows no endpoint: every
client, whose old session the new device cannot decrypt, waits for its own retry timer
(~15 s without keepalive) before it handshakes again. wggw remembers each peer's last
endpoint from every observation, configures re-created peers with it, and has the gateway
start the handshake itself (a "kick": see `kicks`), so tunnels come back in about a second.

Remembered endpoints are {device: {public key: "host:port"}}; the backends keep them in the
runtime directory (backends/endpoint_file.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from wggw.core.desired import Desired
from wggw.core.plan import Change, Observed, UpsertPeer
from wggw.core.wgtypes import WgPeerSpec

Memory = Mapping[str, Mapping[str, str]]

# The persistent keepalive a kick sets for a moment: turning it on makes WireGuard (kernel
# and wireguard-go alike) send a keepalive at once, which starts a handshake to the endpoint.
KICK_KEEPALIVE = 1


def remember(memory: Memory, desired: Desired, observed: Observed) -> dict[str, dict[str, str]]:
    """`memory` updated from an observation: each observed endpoint replaces the remembered
    one; a peer observed without endpoint keeps its old one (its device may just have been
    restarted). Only peers and devices of `desired` are kept, so removed ones are forgotten."""
    out: dict[str, dict[str, str]] = {}
    for name, spec in desired.wg.items():
        old = memory.get(name, {})
        dev = observed.wg.get(name)
        mine: dict[str, str] = {}
        for peer in spec.peers:
            seen = dev.peers.get(peer.public_key) if dev else None
            endpoint = (seen.endpoint if seen else None) or old.get(peer.public_key)
            if endpoint:
                mine[peer.public_key] = endpoint
        if mine:
            out[name] = mine
    return out


def hint(changes: list[Change], memory: Memory) -> list[Change]:
    """Peers that are (re)created on a device get their remembered endpoint."""
    out: list[Change] = []
    for c in changes:
        if isinstance(c, UpsertPeer) and c.new and c.peer.endpoint is None:
            endpoint = memory.get(c.device, {}).get(c.peer.public_key)
            if endpoint:
                c = replace(c, peer=replace(c.peer, endpoint=endpoint))
        out.append(c)
    return out


def kicks(changes: list[Change]) -> dict[str, list[WgPeerSpec]]:
    """Per device, the peers the gateway should start a handshake with after `changes`:
    those given a remembered endpoint that have no keepalive of their own (one with a
    keepalive starts it anyway). The specs carry no endpoint: a kick must not overwrite
    an endpoint the peer has meanwhile roamed to."""
    out: dict[str, list[WgPeerSpec]] = {}
    for c in changes:
        if isinstance(c, UpsertPeer) and c.peer.endpoint and not c.peer.keepalive:
            out.setdefault(c.device, []).append(replace(c.peer, endpoint=None))
    return out

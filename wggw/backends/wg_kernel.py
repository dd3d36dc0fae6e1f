"""The kernel WireGuard backend: links of kind `wireguard` made through rtnetlink and
configured through the `wireguard` generic-netlink family (pyroute2's `WireGuard` socket).

Peer changes go out as few SET_DEVICE messages as possible, each carrying many peers
(pyroute2's `WireGuard.set()` sends one peer per call); the kernel applies one message
under one lock. Dumps of large devices arrive split over several messages, and one
peer's allowed IPs may continue in the next message: everything is merged by public key.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from wggw.backends.wireguard import (
    ZERO_KEY_B64,
    WgBackend,
    check_name,
    delete_link,
    format_endpoint,
    link_info,
    normalise_allowed_ips,
    owned_links,
    set_alias,
)
from wggw.core import naming
from wggw.core.errors import BackendError
from wggw.core.keys import Secret, clamped
from wggw.core.wgtypes import WgDeviceState, WgPeerSpec, WgPeerState

KIND = "wireguard"
# Bytes per SET_DEVICE message; well under the default netlink socket buffer (~208 KiB).
MESSAGE_BUDGET = 32 * 1024
PEER_BYTES = 120  # public key, PSK, flags, keepalive, nests
ALLOWED_IP_BYTES = 40  # one nested v6 allowed IP


def _wireguard_socket():
    return _quiet_wireguard_class()()


@functools.cache
def _quiet_wireguard_class():
    """pyroute2's WireGuard socket, minus its root-logger error when the family is absent
    (probing is expected to fail on hosts without the module)."""
    from pyroute2 import WireGuard
    from pyroute2.netlink.generic.wireguard import AsyncWireGuard

    class QuietAsyncWireGuard(AsyncWireGuard):
        module_err_level = "debug"

    class QuietWireGuard(WireGuard):
        async_class = QuietAsyncWireGuard

    return QuietWireGuard


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _peer_nla(spec: WgPeerSpec) -> dict:
    """Create or update one peer with every field set (PSK zeros = none, keepalive 0 = off),
    allowed IPs replaced, so the result does not depend on what was there before."""
    from pyroute2.netlink.generic.wireguard import WGPEER_F_REPLACE_ALLOWEDIPS

    psk = spec.psk.reveal() if spec.psk is not None else ZERO_KEY_B64
    return {
        "attrs": [
            ["WGPEER_A_PUBLIC_KEY", spec.public_key],
            ["WGPEER_A_PRESHARED_KEY", psk],
            ["WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL", int(spec.keepalive or 0)],
            ["WGPEER_A_FLAGS", WGPEER_F_REPLACE_ALLOWEDIPS],
            [
                "WGPEER_A_ALLOWEDIPS",
                [_allowed_ip_nla(c) for c in normalise_allowed_ips(spec.allowed_ips)],
            ],
        ]
        + ([["WGPEER_A_ENDPOINT", _endpoint_nla(spec.endpoint)]] if spec.endpoint else [])
    }


def _endpoint_nla(endpoint: str) -> dict:
    """ "198.51.100.7:51820" or "[2001:db8::7]:51820" as pyroute2's endpoint value."""
    host, _, port = endpoint.rpartition(":")
    return {"addr": host.strip("[]"), "port": int(port)}


def _allowed_ip_nla(cidr: str) -> dict:
    net = ipaddress.ip_network(cidr)
    family = socket.AF_INET if net.version == 4 else socket.AF_INET6
    return {
        "attrs": [
            ["WGALLOWEDIP_A_FAMILY", family],
            ["WGALLOWEDIP_A_IPADDR", net.network_address.packed],
            ["WGALLOWEDIP_A_CIDR_MASK", net.prefixlen],
        ]
    }


def _remove_nla(public_key: str) -> dict:
    from pyroute2.netlink.generic.wireguard import WGPEER_F_REMOVE_ME

    return {"attrs": [["WGPEER_A_PUBLIC_KEY", public_key], ["WGPEER_A_FLAGS", WGPEER_F_REMOVE_ME]]}


def peer_batches(upsert: Sequence[WgPeerSpec], remove: Sequence[str]) -> list[list[dict]]:
    """Peer NLAs in groups that each fit one netlink message (removals first, which frees
    allowed IPs that an upserted peer may take over)."""
    items = [(_remove_nla(k), PEER_BYTES) for k in remove]
    items += [(_peer_nla(s), PEER_BYTES + ALLOWED_IP_BYTES * len(s.allowed_ips)) for s in upsert]
    batches: list[list[dict]] = []
    size = MESSAGE_BUDGET
    for nla, cost in items:
        if size + cost > MESSAGE_BUDGET:
            batches.append([])
            size = 0
        batches[-1].append(nla)
        size += cost
    return batches


def encode_set(ifname: str, peers: list[dict]):
    """One SET_DEVICE message carrying all `peers` in a single WGDEVICE_A_PEERS nest
    (the kernel reads only one such attribute per message)."""
    from pyroute2.netlink.generic.wireguard import WG_CMD_SET_DEVICE, WG_GENL_VERSION, wgmsg

    msg = wgmsg()
    msg["cmd"] = WG_CMD_SET_DEVICE
    msg["version"] = WG_GENL_VERSION
    msg["attrs"].append(["WGDEVICE_A_IFNAME", ifname])
    msg["attrs"].append(["WGDEVICE_A_PEERS", peers])
    return msg


def merge_dump(ifname: str, messages) -> WgDeviceState:
    """Fold every message of a GET_DEVICE dump into one state, merging peers by key."""
    public_key, port, fwmark = None, 0, 0
    peers: dict[str, dict[str, Any]] = {}  # raw fields per key, merged across messages
    for msg in messages:
        fwmark = msg.get_attr("WGDEVICE_A_FWMARK") or fwmark
        if msg.get_attr("WGDEVICE_A_PUBLIC_KEY") is not None:
            public_key = _text(msg.get_attr("WGDEVICE_A_PUBLIC_KEY"))
        port = msg.get_attr("WGDEVICE_A_LISTEN_PORT") or port
        for nla in msg.get_attr("WGDEVICE_A_PEERS") or ():
            _merge_peer(peers, nla)
    return WgDeviceState(
        name=ifname,
        public_key=public_key,
        listen_port=port,
        fwmark=fwmark,
        peers={
            k: WgPeerState(**{**p, "allowed_ips": normalise_allowed_ips(p["allowed_ips"])})
            for k, p in peers.items()
        },
    )


def _merge_peer(peers: dict, nla) -> None:
    """A continuation entry carries only the key and more allowed IPs, so only attributes
    that are present overwrite what an earlier message said."""
    key = _text(nla.get_attr("WGPEER_A_PUBLIC_KEY"))
    peer = peers.setdefault(key, {"public_key": key, "psk": None, "allowed_ips": []})
    psk = nla.get_attr("WGPEER_A_PRESHARED_KEY")
    if psk is not None:
        peer["psk"] = None if _text(psk) == ZERO_KEY_B64 else Secret(_text(psk))
    keepalive = nla.get_attr("WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL")
    if keepalive is not None:
        peer["keepalive"] = keepalive or None
    endpoint = nla.get_attr("WGPEER_A_ENDPOINT")
    if endpoint is not None:
        peer["endpoint"] = format_endpoint(endpoint["addr"], endpoint["port"])
    handshake = nla.get_attr("WGPEER_A_LAST_HANDSHAKE_TIME")
    if handshake is not None and handshake["tv_sec"]:
        peer["last_handshake"] = handshake["tv_sec"] + handshake["tv_nsec"] / 1e9
    for attr, field in (("WGPEER_A_RX_BYTES", "rx_bytes"), ("WGPEER_A_TX_BYTES", "tx_bytes")):
        if nla.get_attr(attr) is not None:
            peer[field] = nla.get_attr(attr)
    peer["allowed_ips"] += [ip["addr"] for ip in nla.get_attr("WGPEER_A_ALLOWEDIPS") or ()]


class KernelBackend(WgBackend):
    kind = "kernel"

    def list_devices(self) -> list[str]:
        return owned_links([KIND])

    def observe(self, ifname: str, only: Iterable[str] | None = None) -> WgDeviceState | None:
        from pyroute2.netlink.exceptions import NetlinkError

        check_name(ifname)
        try:
            with _wireguard_socket() as wg:
                messages = list(wg.info(ifname))
        except NetlinkError as e:
            if e.code in (errno.ENODEV, errno.ENOENT):
                return None
            raise BackendError(f"WireGuard {ifname}: genetlink get failed: {e}") from e
        except OSError as e:
            raise BackendError(f"WireGuard {ifname}: genetlink get failed: {e}") from e
        state = merge_dump(ifname, messages)
        if only is not None:  # genetlink has no per-peer get: the dump is filtered here
            wanted = set(only)
            state = replace(state, peers={k: p for k, p in state.peers.items() if k in wanted})
        return state

    def create(self, ifname: str) -> None:
        from pyroute2 import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError

        check_name(ifname)
        try:
            with IPRoute() as ipr:
                ipr.link("add", ifname=ifname, kind=KIND)
        except NetlinkError as e:
            if e.code != errno.EEXIST:
                raise BackendError(f"WireGuard {ifname}: link add failed: {e}") from e
            if link_info(ifname) != (KIND, naming.LINK_ALIAS):
                raise BackendError(
                    f"WireGuard {ifname}: a link of that name exists and is not wggw's"
                ) from e
            return
        except OSError as e:
            raise BackendError(f"WireGuard {ifname}: link add failed: {e}") from e
        try:
            set_alias(ifname)
        except BackendError:
            delete_link(ifname)  # an unmarked link would be invisible to `down`
            raise

    def delete(self, ifname: str) -> None:
        check_name(ifname)
        info = link_info(ifname)
        if info is None:
            return
        if info != (KIND, naming.LINK_ALIAS):
            raise BackendError(
                f"WireGuard {ifname}: not wggw's (kind {info[0]}, alias {info[1]!r}); left alone"
            )
        delete_link(ifname)

    def configure(self, ifname: str, private_key: Secret | None, listen_port: int) -> None:
        from pyroute2.netlink.exceptions import NetlinkError

        check_name(ifname)
        key = None if private_key is None else clamped(private_key).reveal()  # None: not sent
        try:
            with _wireguard_socket() as wg:
                wg.set(ifname, private_key=key, listen_port=int(listen_port), fwmark=0)
        except (NetlinkError, OSError) as e:
            raise BackendError(f"WireGuard {ifname}: genetlink set (key, port) failed: {e}") from e

    def set_peers(self, ifname: str, upsert: Sequence[WgPeerSpec], remove: Sequence[str]) -> None:
        from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST
        from pyroute2.netlink.exceptions import NetlinkError

        check_name(ifname)
        try:
            with _wireguard_socket() as wg:
                for batch in peer_batches(upsert, remove):
                    tuple(
                        wg.nlm_request(
                            encode_set(ifname, batch),
                            msg_type=wg.prid,
                            msg_flags=NLM_F_REQUEST | NLM_F_ACK,
                        )
                    )
        except (NetlinkError, OSError) as e:
            raise BackendError(f"WireGuard {ifname}: genetlink set (peers) failed: {e}") from e

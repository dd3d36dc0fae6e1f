"""Announce an egress address wggw has just added to an uplink, so that neighbours holding a
stale entry for it (the address was on another gateway a moment ago: `tenant move`, a
restore) learn its new owner at once instead of after their own entry expires: a gratuitous
ARP for IPv4, an unsolicited neighbour advertisement for IPv6. wggw adds its IPv6 egress
addresses nodad, so the kernel sends nothing for them by itself (and with DAD it would send a
solicitation, not an advertisement). Best effort: a failure is echoed as a warning and never
fails the apply that added the address.

Raw sockets of the standard library only: AF_PACKET for the ARP frame (the receiver needs
the uplink's MAC in it), an ICMPv6 raw socket for the NA (the kernel fills in the checksum).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import sys
import threading
from collections.abc import Callable

COUNT = 2  # packets per address: one may be lost on a link that just came up
INTERVAL = 0.1  # seconds between them

_ETH_P_ARP = 0x0806
_BROADCAST = b"\xff" * 6
_ALL_NODES = "ff02::1"
_NA_OVERRIDE = 0x20  # the O flag: replace the cached link-layer address
_OPT_TARGET_LLADDR = 2

Echo = Callable[[str], None] | None


def announce(addresses: list[tuple[str, str]], echo: Echo = None) -> None:
    """Send the first announcement of each (ifname, ip) now and the repeats from a timer
    thread (not a daemon: a CLI that exits right after its apply still sends them)."""
    if not addresses:
        return
    for ifname, ip in addresses:
        if echo is not None:
            echo(_line(ifname, ip))
    _send_all(addresses, echo)
    if COUNT > 1:
        _repeat(addresses, echo, COUNT - 1)


def _repeat(addresses: list[tuple[str, str]], echo: Echo, left: int) -> None:
    def again() -> None:
        _send_all(addresses, echo)
        if left > 1:
            _repeat(addresses, echo, left - 1)

    timer = threading.Timer(INTERVAL, again)
    timer.daemon = False
    timer.start()


def _line(ifname: str, ip: str) -> str:
    if ":" in ip:
        return (
            f"[#] send {COUNT} unsolicited neighbour advertisements for {ip} on {ifname} "
            f"to {_ALL_NODES} (override)"
        )
    return f"[#] arping -q -U -c {COUNT} -I {ifname} {ip}  # gratuitous ARP"


def _send_all(addresses: list[tuple[str, str]], echo: Echo) -> None:
    """One socket per uplink and family (a cold apply may add a thousand egress addresses);
    an address that fails does not stop the others."""
    for ifname in dict.fromkeys(name for name, _ in addresses):
        ips = [ip for name, ip in addresses if name == ifname]
        for family, send in ((4, send_garp), (6, send_na)):
            mine = [ip for ip in ips if (":" in ip) == (family == 6)]
            try:
                failed = send(ifname, mine) if mine else []
            except OSError as e:  # the socket itself (no such device, no CAP_NET_RAW)
                failed = [(ip, e) for ip in mine]
            _report(echo, ifname, failed)


def _report(echo: Echo, ifname: str, failed: list[tuple[str, OSError]]) -> None:
    """One warning line per cause, not per address."""
    by_cause: dict[str, list[str]] = {}
    for ip, err in failed:
        by_cause.setdefault(str(err), []).append(ip)
    for cause, which in by_cause.items():
        more = f" and {len(which) - 3} more" if len(which) > 3 else ""
        names = ", ".join(which[:3]) + more
        _warn(echo, f"warning: could not announce {names} on {ifname}: {cause}")


def _warn(echo: Echo, line: str) -> None:
    if echo is not None:
        echo(line)
    else:
        print(line, file=sys.stderr)


def garp_frame(mac: bytes, ip: str) -> bytes:
    """An ARP request to broadcast whose sender and target are both `ip` (RFC 5227's
    announcement): Linux updates an existing entry from it, overriding its locktime."""
    addr = ipaddress.IPv4Address(ip).packed
    eth = _BROADCAST + mac + struct.pack("!H", _ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + addr + b"\x00" * 6 + addr
    return eth + arp


def na_message(mac: bytes, ip: str) -> bytes:
    """An ICMPv6 neighbour advertisement for `ip`, override set, not solicited, not a router,
    with the target link-layer address option (checksum left 0: the kernel computes it)."""
    target = ipaddress.IPv6Address(ip).packed
    head = struct.pack("!BBHB3x", 136, 0, 0, _NA_OVERRIDE)
    return head + target + struct.pack("!BB", _OPT_TARGET_LLADDR, 1) + mac


def send_garp(ifname: str, ips: list[str]) -> list[tuple[str, OSError]]:
    """Send one gratuitous ARP per address; returns the addresses that failed."""
    failed = []
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ARP)) as s:
        s.bind((ifname, _ETH_P_ARP))
        mac = s.getsockname()[4]
        for ip in ips:
            try:
                s.send(garp_frame(mac, ip))
            except OSError as e:
                failed.append((ip, e))
    return failed


def send_na(ifname: str, ips: list[str]) -> list[tuple[str, OSError]]:
    """Send one unsolicited NA per address; returns the addresses that failed."""
    index = socket.if_nametoindex(ifname)
    mac = _mac(ifname)
    failed = []
    with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as s:
        # A receiver drops neighbour discovery that did not come with hop limit 255.
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        for ip in ips:
            # From the announced address itself (ours, added nodad, so never tentative;
            # EINVAL if it is not on the uplink).
            info = ipaddress.IPv6Address(ip).packed + struct.pack("@I", index)
            cmsg = [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, info)]
            try:
                s.sendmsg([na_message(mac, ip)], cmsg, 0, (_ALL_NODES, 0, 0, index))
            except OSError as e:
                failed.append((ip, e))
    return failed


def _mac(ifname: str) -> bytes:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as s:
        s.bind((ifname, 0))
        return s.getsockname()[4]

"""The HA lab's internet host: echoes probes with the source it saw, pings the egress IPs and
captures every source address that reaches it (run as a script in the `inet` namespace).

    python3 hawatch.py DEV LOG EXPECT_JSON

EXPECT_JSON maps a probe tag (a tenant) to its egress addresses and lists which MAC belongs to
which gateway: {"tags": {"acme": ["203.0.113.10", "2001:db8:ffff::10"]}, "macs": {MAC: "gwa"},
"egress": [...], "own": [addresses of the gateways' uplinks]}.
One process, one select loop, so every line of LOG carries one clock (time.monotonic, the same
in every namespace of the host):
- `e T EGRESS GW`: an echo reply from an egress IP arrived from gateway GW's MAC (who holds it);
- `p T TAG SRC`: a tagged probe arrived from the right source (counted, logged 1 in 50);
- `w T TAG SRC DST`: a packet with a wrong source (a probe with another tenant's or a
  gateway's own address, or anything from an address that is neither an egress nor a gateway's
  own uplink): this is what fail-closed forbids, so it is seen rather than timed out.
Exits on SIGTERM; prints `ready` once its sockets are bound.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import struct
import sys
import time

ECHO_PORT = 7
PING_INTERVAL = 0.02
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
_IDENT = os.getpid() & 0xFFFF


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _l3(frame: bytes) -> tuple[int, str, str, int, bytes] | None:
    """(version, src, dst, protocol, l4 bytes) of an IPv4/IPv6 frame, else None."""
    etype = struct.unpack("!H", frame[12:14])[0]
    if etype == 0x0800 and len(frame) >= 34:
        ihl = (frame[14] & 0x0F) * 4
        src, dst = (
            socket.inet_ntop(socket.AF_INET, frame[26:30]),
            socket.inet_ntop(socket.AF_INET, frame[30:34]),
        )
        return 4, src, dst, frame[23], frame[14 + ihl :]
    if etype == 0x86DD and len(frame) >= 54:
        src = socket.inet_ntop(socket.AF_INET6, frame[22:38])
        dst = socket.inet_ntop(socket.AF_INET6, frame[38:54])
        return 6, src, dst, frame[20], frame[54:]
    return None


class Watch:
    def __init__(self, dev: str, log_path: str, expect: dict) -> None:
        self.tags: dict[str, set[str]] = {t: set(a) for t, a in expect["tags"].items()}
        self.macs: dict[str, str] = {m.lower(): g for m, g in expect["macs"].items()}
        self.egress: list[str] = list(expect["egress"])
        self.known = set(self.egress) | set(expect.get("own", []))
        self.log = open(log_path, "a", buffering=1)  # noqa: SIM115 (closed on exit)
        self.good: dict[str, int] = {}
        self.cap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.cap.bind((dev, 0))
        self.echo = [self._udp(socket.AF_INET, "0.0.0.0"), self._udp(socket.AF_INET6, "::")]
        self.icmp4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        self.icmp6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        self.seq = 0

    @staticmethod
    def _udp(family: int, host: str) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, ECHO_PORT))
        return sock

    def ping_all(self) -> None:
        self.seq = (self.seq + 1) & 0xFFFF
        for addr in self.egress:
            v6 = ":" in addr
            typ = 128 if v6 else 8
            head = struct.pack("!BBHHH", typ, 0, 0, _IDENT, self.seq)
            csum = 0 if v6 else _checksum(head + b"hawatch")
            pkt = struct.pack("!BBHHH", typ, 0, csum, _IDENT, self.seq) + b"hawatch"
            try:
                (self.icmp6 if v6 else self.icmp4).sendto(pkt, (addr, 0))
            except OSError:
                pass  # no neighbour yet (address moving): the next round tries again

    def on_frame(self, frame: bytes, pkttype: int, now: float) -> None:
        if pkttype == PACKET_OUTGOING or len(frame) < 14:
            return
        l3 = _l3(frame)
        if l3 is None:
            return
        ver, src, dst, proto, l4 = l3
        mac = frame[6:12].hex(":")
        if proto == (58 if ver == 6 else 1) and len(l4) >= 8:
            typ, _c, _s, ident = struct.unpack("!BBHH", l4[:6])
            if typ == (129 if ver == 6 else 0) and ident == _IDENT and src in self.egress:
                self.log.write(f"e {now:.4f} {src} {self.macs.get(mac, mac)}\n")
                return
        if src.startswith("fe80:") or dst.startswith("ff") or proto == 112:
            return  # neighbour discovery, multicast and VRRP are link business, not egress
        tag = self._tag(proto, l4)
        if tag is not None and src in self.tags.get(tag, ()):
            self.good[tag] = self.good.get(tag, 0) + 1
            if self.good[tag] % 50 == 1:
                self.log.write(f"p {now:.4f} {tag} {src}\n")
        elif tag is not None or src not in self.known:
            self.log.write(f"w {now:.4f} {tag or '-'} {src} {dst}\n")

    @staticmethod
    def _tag(proto: int, l4: bytes) -> str | None:
        if proto != 17 or len(l4) < 9:
            return None
        if struct.unpack("!H", l4[2:4])[0] != ECHO_PORT:
            return None
        head = l4[8:40].split(b" ", 1)[0]
        return head.decode(errors="replace") if head else None

    def on_echo(self, sock: socket.socket) -> None:
        data, peer = sock.recvfrom(2048)
        sock.sendto(f"{peer[0]} ".encode() + data, peer)

    def run(self) -> None:
        print("ready", flush=True)
        next_ping = time.monotonic()
        socks = [self.cap, *self.echo, self.icmp4, self.icmp6]
        while True:
            now = time.monotonic()
            if now >= next_ping:
                self.ping_all()
                next_ping = now + PING_INTERVAL
            for sock in select.select(socks, [], [], max(0.0, next_ping - now))[0]:
                if sock is self.cap:
                    frame, addr = sock.recvfrom(65535)
                    self.on_frame(frame, addr[2], time.monotonic())
                elif sock in self.echo:
                    self.on_echo(sock)
                else:
                    sock.recv(2048)  # replies are read from the capture, with their MAC


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    dev, log_path, expect = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    Watch(dev, log_path, expect).run()


if __name__ == "__main__":
    main()

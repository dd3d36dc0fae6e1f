"""One ICMP/ICMPv6 echo, for the lab's `can_reach` (run as a script inside a namespace).

Written in Python because the hosts wggw is tested on need not have iputils-ping; raw sockets
are available since the lab runs as root. Exit 0 if a matching reply arrived within the timeout,
1 otherwise. Usage: python3 ping.py ADDRESS [TIMEOUT_SECONDS]
"""

from __future__ import annotations

import ipaddress
import os
import select
import socket
import struct
import sys
import time


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def ping(addr: str, timeout: float) -> bool:
    v6 = ipaddress.ip_address(addr).version == 6
    fam, proto, req, rep = (
        (socket.AF_INET6, socket.IPPROTO_ICMPV6, 128, 129)
        if v6
        else (socket.AF_INET, socket.IPPROTO_ICMP, 8, 0)
    )
    ident, payload = os.getpid() & 0xFFFF, b"wggw-lab"
    header = struct.pack("!BBHHH", req, 0, 0, ident, 1)
    # The kernel fills in ICMPv6 checksums on raw sockets; ICMPv4 we compute ourselves.
    csum = 0 if v6 else _checksum(header + payload)
    packet = struct.pack("!BBHHH", req, 0, csum, ident, 1) + payload
    with socket.socket(fam, socket.SOCK_RAW, proto) as sock:
        sock.sendto(packet, (addr, 0))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([sock], [], [], left)[0]:
                break
            data, _ = sock.recvfrom(2048)
            icmp = (
                data if v6 else data[(data[0] & 0x0F) * 4 :]
            )  # v4 raw sockets include the IP header
            if len(icmp) >= 8:
                typ, _code, _sum, rid, _seq = struct.unpack("!BBHHH", icmp[:8])
                if typ == rep and rid == ident:
                    return True
    return False


def main() -> None:
    timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    sys.exit(0 if ping(sys.argv[1], timeout) else 1)


if __name__ == "__main__":
    main()

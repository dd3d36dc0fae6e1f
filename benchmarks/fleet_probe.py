"""The propagation benchmark's client probe (benchmarks/fleet_agent.py), run in the client
namespace: for each line "SRC TIMEOUT" on stdin, ICMP echo requests from SRC to the target
every 10 ms until the first reply; prints "ok SECONDS" (or "timeout")."""

from __future__ import annotations

import os
import select
import socket
import struct
import sys
import time


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo(ident: int, seq: int) -> bytes:
    head = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    return struct.pack("!BBHHH", 8, 0, checksum(head + b"wggw"), ident, seq) + b"wggw"


def wait_reply(src: str, target: str, timeout: float) -> float | None:
    ident = os.getpid() & 0xFFFF
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as s:
        s.bind((src, 0))
        started = time.perf_counter()
        seq = 0
        while time.perf_counter() - started < timeout:
            seq += 1
            try:
                s.sendto(echo(ident, seq), (target, 0))
            except OSError:
                pass  # no route yet: try again
            ready, _, _ = select.select([s], [], [], 0.01)
            while ready:
                data, addr = s.recvfrom(2048)
                icmp = data[(data[0] & 0x0F) * 4 :]
                if (
                    addr[0] == target
                    and icmp[0] == 0
                    and struct.unpack("!H", icmp[4:6])[0] == ident
                ):
                    return time.perf_counter() - started
                ready, _, _ = select.select([s], [], [], 0)
    return None


def main() -> None:
    target = sys.argv[1]
    for line in sys.stdin:
        src, timeout = line.split()
        took = wait_reply(src, target, float(timeout))
        print("timeout" if took is None else f"ok {took:.6f}", flush=True)


if __name__ == "__main__":
    main()

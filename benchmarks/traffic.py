"""Bounded traffic programs run inside the benchmark's namespaces (never elsewhere).

    python3 -m benchmarks.traffic serve ADDR PORT SECONDS        accept and drop TCP connections
    python3 -m benchmarks.traffic connrate ADDR PORT COUNT SECONDS
        sequential TCP connect + RST; prints "<connections> <seconds> <failures>"
    python3 -m benchmarks.traffic flood ADDR PORT SECONDS SIZE
        UDP datagrams of SIZE payload bytes as fast as one core sends them;
        prints "<sent> <seconds>"

Targets must be inside the RFC 2544 benchmark range 198.18.0.0/15, which only our namespaces use.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import sys
import time

ALLOWED = ipaddress.ip_network("198.18.0.0/15")
MAX_COUNT = 200_000
MAX_SECONDS = 60.0


def target(addr: str) -> str:
    if ipaddress.ip_address(addr) not in ALLOWED:
        raise SystemExit(f"refusing to send traffic to {addr}: not inside {ALLOWED}")
    return addr


def serve(addr: str, port: int, seconds: float) -> None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, port))
    srv.listen(4096)
    srv.settimeout(0.5)
    print("ready", flush=True)
    deadline = time.monotonic() + min(seconds, 3600.0)
    while time.monotonic() < deadline:
        try:
            conn, _ = srv.accept()
        except TimeoutError:
            continue
        conn.close()


def connrate(addr: str, port: int, count: int, seconds: float) -> None:
    linger = struct.pack("ii", 1, 0)  # close with RST: no TIME_WAIT pile-up
    done = failures = 0
    start = time.perf_counter()
    deadline = start + min(seconds, MAX_SECONDS)
    while done < min(count, MAX_COUNT) and time.perf_counter() < deadline:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        s.settimeout(1.0)
        try:
            s.connect((addr, port))
            done += 1
        except OSError:
            failures += 1
        finally:
            s.close()
    print(done, time.perf_counter() - start, failures)


def flood(addr: str, port: int, seconds: float, size: int) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((addr, port))
    payload = b"\0" * size
    sent = 0
    start = time.perf_counter()
    deadline = start + min(seconds, MAX_SECONDS)
    send = s.send
    while True:
        for _ in range(256):  # check the clock every 256 datagrams
            try:
                send(payload)
                sent += 1
            except OSError:  # ENOBUFS: the tunnel queue is full; keep offering load
                pass
        if time.perf_counter() >= deadline or sent >= 50_000_000:
            break
    print(sent, time.perf_counter() - start)


def main(argv: list[str]) -> None:
    cmd = argv[0]
    if cmd == "serve":
        serve(argv[1], int(argv[2]), float(argv[3]))
    elif cmd == "connrate":
        connrate(target(argv[1]), int(argv[2]), int(argv[3]), float(argv[4]))
    elif cmd == "flood":
        flood(target(argv[1]), int(argv[2]), float(argv[3]), int(argv[4]))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv[1:])

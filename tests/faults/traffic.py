"""A tenant client's steady traffic for the fault suite (run as a script inside a client namespace).

One thread per address family sends an HTTP GET `/<tenant>/<family>/<seq>` to the lab's internet
host every INTERVAL seconds on a fresh TCP connection (so every request is a new connection that
NAT, marks and routes must decide afresh), and appends one JSON line per request to LOG:
`{"v": 4, "seq": 17, "t0": start, "t1": end, "src": "<address the host saw>" | null, "err": ...}`
(times: CLOCK_MONOTONIC, which every namespace shares). The host answers with the source address
it saw, so the client knows the egress it left by; the host's own log is the authoritative record
of what arrived (see faultlab.Capture). Stops on SIGTERM/SIGINT or after MAX_SECONDS, whichever
comes first. Only lab addresses are accepted as targets.

Usage: python3 traffic.py TENANT LOG TARGET_V4 TARGET_V6 [INTERVAL] [TIMEOUT] [MAX_SECONDS]
"""

from __future__ import annotations

import ipaddress
import json
import signal
import socket
import sys
import threading
import time

_LAB_NETS = [ipaddress.ip_network(n) for n in ("203.0.113.0/24", "2001:db8::/32")]
_STOP = threading.Event()
_LOCK = threading.Lock()


def _get(addr: str, family: int, path: str, timeout: float) -> str:
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect((addr, 80))
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: inet\r\n\r\n".encode())
        data = b""
        while len(data) < 4096:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.0 200") and not head.startswith(b"HTTP/1.1 200"):
        raise OSError(f"bad response {head[:40]!r}")
    return body.decode().strip()


def _stream(tenant: str, v: int, addr: str, log, interval: float, timeout: float) -> None:
    family = socket.AF_INET6 if v == 6 else socket.AF_INET
    seq = 0
    while not _STOP.is_set():
        seq += 1
        t0 = time.monotonic()
        src, err = None, None
        try:
            src = _get(addr, family, f"/{tenant}/{v}/{seq}", timeout)
        except OSError as exc:  # timeouts, refusals, unreachable: all just "no answer"
            err = type(exc).__name__
        t1 = time.monotonic()
        line = json.dumps({"v": v, "seq": seq, "t0": t0, "t1": t1, "src": src, "err": err})
        with _LOCK:
            log.write(line + "\n")
            log.flush()
        _STOP.wait(max(0.0, t0 + interval - time.monotonic()))


def main() -> None:
    tenant, log_path, v4, v6 = sys.argv[1:5]
    interval = float(sys.argv[5]) if len(sys.argv) > 5 else 0.1
    timeout = float(sys.argv[6]) if len(sys.argv) > 6 else 0.5
    max_seconds = float(sys.argv[7]) if len(sys.argv) > 7 else 300.0
    for addr in (v4, v6):
        if not any(ipaddress.ip_address(addr) in net for net in _LAB_NETS):
            sys.exit(f"traffic.py: refusing target {addr}: not a lab address")
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: _STOP.set())
    with open(log_path, "a", encoding="utf-8") as log:
        threads = [
            threading.Thread(target=_stream, args=(tenant, v, a, log, interval, timeout))
            for v, a in ((4, v4), (6, v6))
        ]
        for t in threads:
            t.start()
        print("ready", flush=True)
        _STOP.wait(max_seconds)
        _STOP.set()
        for t in threads:
            t.join(timeout + 1.0)


if __name__ == "__main__":
    main()

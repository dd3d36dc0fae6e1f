"""A tenant's client traffic in the HA lab: a steady UDP probe through the tunnel to the internet
host's echo port, logging which replies came back and from which source (run as a script in a
client namespace).

    python3 haprobe.py TAG LOG INTERVAL TARGET=EGRESS [TARGET=EGRESS ...]

Every INTERVAL seconds it sends `TAG SENT SEQ` to each TARGET (port 7); the internet host
echoes it prefixed with the source address it saw. LOG gets one line per reply:
`g SENT RECV` when that source is the tenant's EGRESS for that target, `b SENT RECV SRC`
otherwise (times are time.monotonic, the same clock in every namespace). A reply's SENT tells
the analysis whether the probe left after a failure began, so an old reply in flight is never
taken for a recovery. Exits on SIGTERM.
"""

from __future__ import annotations

import select
import signal
import socket
import sys
import time

ECHO_PORT = 7


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    tag, log_path, interval = sys.argv[1], sys.argv[2], float(sys.argv[3])
    pairs = [arg.split("=", 1) for arg in sys.argv[4:]]
    socks: dict[socket.socket, tuple[str, str]] = {}
    for target, egress in pairs:
        fam = socket.AF_INET6 if ":" in target else socket.AF_INET
        sock = socket.socket(fam, socket.SOCK_DGRAM)
        sock.setblocking(False)
        socks[sock] = (target, egress)
    seq = 0
    with open(log_path, "a", buffering=1) as log:
        print("ready", flush=True)
        next_send = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= next_send:
                seq += 1
                for sock, (target, _egress) in socks.items():
                    try:
                        sock.sendto(f"{tag} {now:.4f} {seq}".encode(), (target, ECHO_PORT))
                    except OSError:
                        pass  # no route yet (tunnel being rebuilt): the next tick tries again
                next_send = now + interval
            ready = select.select(list(socks), [], [], max(0.0, next_send - now))[0]
            for sock in ready:
                _read(sock, socks[sock][1], log)


def _read(sock: socket.socket, egress: str, log) -> None:
    try:
        data = sock.recv(2048)
    except OSError:
        return  # an ICMP error queued on the socket: no reply, nothing to log
    recv = time.monotonic()
    parts = data.decode(errors="replace").split()
    if len(parts) < 3:
        return
    src, sent = parts[0], parts[2]
    if src == egress:
        log.write(f"g {sent} {recv:.4f}\n")
    else:
        log.write(f"b {sent} {recv:.4f} {src}\n")


if __name__ == "__main__":
    main()

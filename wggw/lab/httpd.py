"""The lab's pretend internet host: answers every HTTP GET with the source address it saw.

Run by `wggw.lab.topology` inside the `inet` namespace (`python -m wggw.lab.httpd`). It serves
HTTP on 0.0.0.0:80 and [::]:80 (two sockets, the v6 one v6-only, so an IPv4 client is reported as
`203.0.113.10` rather than `::ffff:203.0.113.10`) and echoes UDP datagrams on port 7. It prints
one `ready` line once every socket is bound, so the harness waits on that instead of sleeping.
"""

from __future__ import annotations

import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HTTP_PORT = 80
ECHO_PORT = 7


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = (self.client_address[0] + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: object) -> None:
        # One line per request on stderr (the harness keeps it in a log file for debugging).
        sys.stderr.write(f"{self.client_address[0]} {fmt % args}\n")


class _V4Server(ThreadingHTTPServer):
    address_family = socket.AF_INET
    daemon_threads = True


class _V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True

    def server_bind(self) -> None:
        # v6-only so that the v4 socket above owns IPv4 and reports plain v4 addresses.
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        super().server_bind()


def _udp_echo(family: int, host: str) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((host, ECHO_PORT))

    def loop() -> None:
        while True:
            data, peer = sock.recvfrom(2048)
            sock.sendto(data, peer)

    threading.Thread(target=loop, daemon=True).start()
    return sock


def main() -> None:
    servers = [_V4Server(("0.0.0.0", HTTP_PORT), _Handler), _V6Server(("::", HTTP_PORT), _Handler)]
    echo = [_udp_echo(socket.AF_INET, "0.0.0.0"), _udp_echo(socket.AF_INET6, "::")]
    for srv in servers[1:]:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    print("ready", flush=True)
    try:
        servers[0].serve_forever()
    finally:
        for sock in echo:
            sock.close()


if __name__ == "__main__":
    main()

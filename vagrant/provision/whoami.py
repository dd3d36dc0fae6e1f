"""The lab's "internet" service: answers every GET with the source address it sees, one line.

Listens on [::]:PORT dual-stack, so IPv4 clients appear as themselves (the ::ffff: prefix is
stripped). Each request is logged as "<time> <source> <path>" so a failing lab check can show
what the internet host actually saw.
"""
import argparse
import http.server
import socket
import time


class Handler(http.server.BaseHTTPRequestHandler):
    log_path = "/dev/null"

    def do_GET(self):
        source = self.client_address[0].removeprefix("::ffff:")
        body = (source + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"{time.strftime('%H:%M:%S')} {source} {self.path}\n")

    def log_message(self, *args):  # the request log above is the useful one
        pass


class DualStackServer(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--log", default="/dev/null")
    args = parser.parse_args()
    Handler.log_path = args.log
    DualStackServer(("::", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()

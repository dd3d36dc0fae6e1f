"""keepalived's track and notify scripts (issue 14), run as a file with the standard library
only (`python3 -I hahook.py ...`): keepalived starts the check every second, so it must not
pay for importing wggw. Both talk to the agent's control socket (ops/agentclient.py protocol).

    hahook.py check SOCKET                    exit 0: the agent answers "healthy" in time
    hahook.py notify SOCKET TYPE NAME STATE [PRIORITY]
                                              tell the agent an instance's new VRRP state
"""

from __future__ import annotations

import json
import socket
import sys

CHECK_TIMEOUT = 1.5  # below keepalived's script timeout: a frozen agent fails the check
NOTIFY_TIMEOUT = 30.0  # the agent may be in a round; the takeover kick follows it


def ask(path: str, message: dict, timeout: float) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(json.dumps(message).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    reply = json.loads(data)
    if not isinstance(reply, dict):
        raise ValueError("reply is not an object")
    return reply


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "check":
        try:
            reply = ask(argv[1], {"op": "health"}, CHECK_TIMEOUT)
        except (OSError, ValueError) as e:
            print(f"wggw health: agent does not answer: {e}", file=sys.stderr)
            return 1
        if reply.get("healthy") is not True:
            print(f"wggw health: {reply.get('reason', 'unhealthy')}", file=sys.stderr)
            return 1
        return 0
    if len(argv) >= 5 and argv[0] == "notify":
        message = {"op": "ha", "type": argv[2], "instance": argv[3], "state": argv[4]}
        try:
            reply = ask(argv[1], message, NOTIFY_TIMEOUT)
        except (OSError, ValueError) as e:
            print(f"wggw notify: agent does not answer: {e}", file=sys.stderr)
            return 1
        return 0 if reply.get("ok") else 1
    usage = "usage: hahook.py check SOCKET | notify SOCKET TYPE NAME STATE [PRIORITY]"
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

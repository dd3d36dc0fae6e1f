"""The agent's end of the control socket (protocol: wggw/ops/agentclient.py). A listening
AF_UNIX socket, 0600 in wggw's runtime dir; the event loop accepts one connection at a time
and answers it before going on (a client that does not send its line within a second is
dropped, so it cannot stall the loop). Only root and the agent's own user are answered."""

from __future__ import annotations

import json
import os
import socket
import struct
from collections.abc import Callable

from wggw.fsutil import private_umask
from wggw.ops.agentclient import socket_path

READ_TIMEOUT = 1.0
MAX_REQUEST = 1 << 20


class ControlServer:
    def __init__(self) -> None:
        self.path = socket_path()
        self.path.unlink(missing_ok=True)  # left by a dead agent; we hold the agent lock
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        with private_umask():
            self.sock.bind(str(self.path))
        os.chmod(self.path, 0o600)
        self.sock.listen(16)
        self.sock.setblocking(False)

    def fileno(self) -> int:
        return self.sock.fileno()

    def serve_one(self, handle: Callable[[dict], dict]) -> str | None:
        """Accept one waiting connection, answer it; returns the request's op (for the log)."""
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            return None
        with conn:
            if not _same_user(conn):
                return None  # the socket is 0600 already; this is the second lock on the door
            conn.setblocking(True)
            conn.settimeout(READ_TIMEOUT)
            try:
                request = _read_line(conn)
            except (OSError, ValueError):
                return None
            conn.settimeout(None)
            reply = handle(request)
            try:
                conn.sendall(json.dumps(reply).encode() + b"\n")
            except OSError:
                pass  # the client gave up; the change is applied all the same
            return str(request.get("op"))

    def close(self) -> None:
        self.sock.close()
        self.path.unlink(missing_ok=True)


def _same_user(conn: socket.socket) -> bool:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid in (0, os.geteuid())


def _read_line(conn: socket.socket) -> dict:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk or len(data) > MAX_REQUEST:
            break
        data += chunk
    request = json.loads(data)
    if not isinstance(request, dict):
        raise ValueError("request is not an object")
    return request

"""Failures below the backends (a daemon that hangs or answers nonsense, nft that cannot start
or hangs) leave as one BackendError naming the object, in bounded time, never as a raw
OSError or subprocess exception. No root: a stand-in UAPI socket, a stand-in subprocess."""

from __future__ import annotations

import socket
import subprocess
import threading
import time

import pytest

from wggw.backends import nft, wg_uapi
from wggw.core.errors import BackendError


class StandInDaemon:
    """A UAPI socket that reads one request and answers `reply` (None: never answers)."""

    def __init__(self, path: str, reply: bytes | None):
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(1)
        self.server.settimeout(5)
        self.reply, self.done = reply, threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.server.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            data = b""
            while not data.endswith(b"\n\n"):
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            if self.reply is None:
                self.done.wait(5)  # hung: keep the connection open, say nothing
            else:
                conn.sendall(self.reply)

    def close(self) -> None:
        self.done.set()
        self.thread.join(5)
        self.server.close()


@pytest.fixture
def daemon(tmp_path):
    made: list[StandInDaemon] = []

    def start(reply: bytes | None) -> str:
        path = str(tmp_path / "wgx0.sock")
        made.append(StandInDaemon(path, reply))
        return path

    yield start
    for d in made:
        d.close()


@pytest.mark.parametrize("reply", [b"protocol_version=1\n\n", b"errno=banana\n\n", b"errno=0\n"])
def test_uapi_set_with_a_reply_that_is_not_one_is_named(daemon, reply):
    client = wg_uapi.UapiClient("wgx0", daemon(reply))
    with pytest.raises(BackendError, match=r"^wireguard-go wgx0: UAPI set failed: "):
        client.set(["listen_port=51820"])


def test_uapi_get_from_a_hung_daemon_is_bounded_and_named(daemon, monkeypatch):
    monkeypatch.setattr(wg_uapi, "TIMEOUT", 0.3)
    client = wg_uapi.UapiClient("wgx0", daemon(None))
    start = time.monotonic()
    with pytest.raises(BackendError, match=r"^wireguard-go wgx0: UAPI get failed: .*timed out"):
        client.get()
    assert time.monotonic() - start < 5


@pytest.mark.parametrize(
    "failure",
    [
        FileNotFoundError(2, "No such file or directory"),
        PermissionError(13, "Permission denied"),
        subprocess.TimeoutExpired(["nft"], 60),
    ],
)
def test_nft_that_cannot_run_or_hangs_is_named(monkeypatch, failure):
    def run(*args, **kwargs):
        raise failure

    monkeypatch.setattr(nft, "_nft", lambda: "/usr/sbin/nft")
    monkeypatch.setattr(subprocess, "run", run)
    with pytest.raises(BackendError, match=r"^nftables table inet wggw: nft -c -f -: "):
        nft.load("table inet wggw {}\n", check_only=True)
    with pytest.raises(BackendError, match=r"^nftables table inet wggw: nft -j list table "):
        nft.observe()

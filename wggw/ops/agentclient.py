"""Talk to a running `wggw agent` over its control socket (`agent.sock` in wggw's runtime
dir, AF_UNIX, 0600): the CLI hands a change it just committed to the agent and waits until
the agent has applied it. No agent running: every call says so (None/False) at once, and
the CLI applies the change itself, as without an agent.

Protocol: one JSON object per line each way. Requests: {"op": "ping"}, {"op": "stop"} (`down
--stop-agent`: the agent answers, then exits; the data plane stays), and {"op": "peer",
"store": STATE_DIR, "tenant": T, "peer": NAME|null, "keys": [...]} (one peer's WireGuard
entries; the caller holds the store lock while it waits, so the agent reads the store without
taking it). Other store changes reach the agent by its poll of the store's generation. Replies:
{"ok": true, "lines": ["[#] ...", ...]}, {"ok": false, "error": "one line"}, or {"ok": false,
"other_store": true} (that agent keeps another store: the CLI applies the change itself). Never
a secret.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterable
from pathlib import Path

from wggw.backends import runfiles
from wggw.core.errors import BackendError

REPLY_TIMEOUT = 120.0  # a full converge at 10,000 peers takes seconds, not minutes


def socket_path() -> Path:
    return runfiles.runtime_dir() / "agent.sock"


def request(message: dict, timeout: float = REPLY_TIMEOUT) -> dict | None:
    """Send one request and return the reply; None when no agent listens."""
    path = socket_path()
    if not path.exists():
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            return None  # a socket file left by an agent that died: nobody listens
        sock.sendall(json.dumps(message).encode() + b"\n")
        data = b""
        try:
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            raise BackendError(f"wggw agent ({path}) did not answer within {timeout:g}s") from None
    if not data:
        raise BackendError(f"wggw agent ({path}) closed the connection without an answer")
    return json.loads(data)


def store_id(store) -> str:
    """Which store a request is about: an agent applies changes of its own store only."""
    return str(Path(store.state_dir).resolve())


def notify_agent(message: dict, echo: Callable[[str], None] | None = None) -> bool:
    """Hand a committed change to a running agent and wait until it is applied. False: no
    agent runs, or it serves another store (the caller applies it itself). The agent's
    failure is raised as its one line."""
    reply = request(message)
    if reply is None or reply.get("other_store"):
        return False
    if not reply.get("ok"):
        raise BackendError(f"wggw agent: {reply.get('error', 'failed')}")
    for line in reply.get("lines", []):
        if echo:
            echo(line)
    return True


def apply_peer_via_agent(
    store,
    tenant: str,
    peer: str | None,
    keys: Iterable[str],
    echo: Callable[[str], None] | None = None,
) -> bool:
    """`peer add/remove --apply` through a running agent (see notify_agent)."""
    return notify_agent(
        {
            "op": "peer",
            "store": store_id(store),
            "tenant": tenant,
            "peer": peer,
            "keys": sorted(keys),
        },
        echo,
    )

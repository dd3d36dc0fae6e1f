"""The floor of a cold apply, run inside a fresh gateway namespace: start wireguard-go, one UAPI
transaction with every peer, one `nft -f` of wggw's table, one `ip -batch` with every address,
route and rule wggw would create. No observation, no verification, no store: what any manager
must at least pay. Prints the seconds.

    python3 -m benchmarks.floor STATE_DIR IFNAME
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from wggw.backends import wg_uapi
from wggw.core.desired import compile_state
from wggw.core.hostfacts import DefaultRoute, HostFacts
from wggw.store.sqlite import open_store

from .lab import GW_UPLINK, INET_ADDR


def batch_lines(want) -> list[str]:
    lines = [f"address add {a.cidr} dev {a.ifname}" for a in sorted(want.addresses)]
    lines += [r.describe()[len("ip ") :] for r in sorted(want.routes)]
    lines += [
        r.describe()[len("ip ") :].replace("rule ", "rule add ", 1) for r in sorted(want.rules)
    ]
    return lines


def _serving(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(path)
            return True
        except OSError:
            return False


def main(state_dir: str, ifname: str) -> None:
    state = open_store(Path(state_dir)).load()
    facts = HostFacts(
        {4: DefaultRoute("uplink0", INET_ADDR)},
        frozenset({GW_UPLINK}),
        frozenset({"uplink0", "lo", ifname}),
    )
    want = compile_state(state, facts)
    dev = want.wg[ifname]
    lines = wg_uapi.device_lines(dev.private_key, dev.listen_port)
    for p in dev.peers:
        lines += wg_uapi.peer_lines(p)
    with tempfile.NamedTemporaryFile("w", suffix=".batch", delete=False) as f:
        f.write("\n".join(batch_lines(want)) + "\n")
    start = time.perf_counter()
    env = {**os.environ, "WG_PROCESS_FOREGROUND": "1", "LOG_LEVEL": "error"}
    subprocess.Popen(
        ["wireguard-go", ifname],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    sock = wg_uapi.socket_path(ifname)
    deadline = time.monotonic() + 10
    while not _serving(sock) and time.monotonic() < deadline:  # the file exists before listen()
        time.sleep(0.002)
    wg_uapi.UapiClient(ifname).set(lines)
    subprocess.run(["ip", "link", "set", ifname, "mtu", "1420", "up"], check=True)
    subprocess.run(["nft", "-f", "-"], input=want.nft.text, text=True, check=True)
    subprocess.run(["ip", "-batch", f.name], check=True)
    elapsed = time.perf_counter() - start
    os.unlink(f.name)
    print(f"{elapsed:.6f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

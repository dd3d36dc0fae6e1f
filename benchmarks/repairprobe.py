"""Run inside a gateway namespace: tell when the agent has repaired a fault.

Reads one JSON request a line: {"bound": S, "link": [IFNAME, OLD_INDEX] | null,
"element": [MAP, TEXT] | null}; plans again and again (no nft parser run; the store read
once, it does not change during the trials) until the plan is empty and the extra check
holds, or S seconds pass; answers `empty MONOTONIC` (the CLOCK_MONOTONIC time it saw that:
the same clock in every process of the host) or `timeout CHANGE; CHANGE`.
Extra checks, for what a plan of digests and counts cannot see: `link` (a killed
wireguard-go: its device must be back under a new index, not merely not gone yet), `element`
(an nft map element edited in place: the map must show TEXT again).
One process for every trial: Python's start-up stays out of the figures.

    python -m benchmarks.repairprobe STATE_DIR
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from wggw.backends.select import select_backend
from wggw.backends.system import RealSystem
from wggw.ops import converge
from wggw.store.sqlite import open_store

PAUSE = 0.002


def _extra_ok(req: dict) -> bool:
    if req.get("link"):
        name, old = req["link"]
        try:
            if socket.if_nametoindex(name) == old:
                return False
        except OSError:
            return False
    if req.get("element"):
        name, text = req["element"]
        out = subprocess.run(
            ["nft", "list", "map", "inet", "wggw", name], capture_output=True, text=True
        ).stdout
        if text not in out:
            return False
    return True


def wait(state, system, req: dict) -> str:
    deadline = time.monotonic() + float(req["bound"])
    changes: list = []
    while time.monotonic() < deadline:
        try:
            changes = converge.compute(state, system, check_nft=False).changes
        except Exception as e:  # noqa: BLE001 - mid-repair reads may fail; try again
            changes = [e]
        if not changes and _extra_ok(req):
            return f"empty {time.monotonic()}"
        time.sleep(PAUSE)
    return "timeout " + ("; ".join(str(c) for c in changes[:3]) or "extra check")


def main(state_dir: str) -> None:
    with open_store(Path(state_dir)) as store:
        state = store.load()
    system = RealSystem(select_backend("auto"))
    print("ready", flush=True)
    for line in sys.stdin:
        print(wait(state, system, json.loads(line)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])

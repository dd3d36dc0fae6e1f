"""Test helper run inside the gateway namespace: measures when the host matches the store.

Reads lines `wait SECONDS` on stdin; for each, plans (no nft parser run) again and again
until the plan is empty or SECONDS pass, and answers `empty MONOTONIC` (the CLOCK_MONOTONIC
time it saw the empty plan; the clock is the same in every process of the host) or
`timeout CHANGE; CHANGE`. One process for many trials: Python's start-up stays out of the
figures."""

from __future__ import annotations

import sys
import time

from wggw.backends.select import select_backend
from wggw.backends.system import RealSystem
from wggw.ops import converge
from wggw.store.sqlite import open_store


def main(state_dir: str) -> None:
    store = open_store(__import__("pathlib").Path(state_dir))
    system = RealSystem(select_backend("auto"))
    print("ready", flush=True)
    for line in sys.stdin:
        bound = float(line.split()[1])
        deadline = time.monotonic() + bound
        changes: list = []
        while time.monotonic() < deadline:
            try:
                changes = converge.compute(store.load(), system, check_nft=False).changes
            except Exception as e:  # noqa: BLE001 - mid-repair reads may fail; try again
                changes = [e]
            if not changes:
                print(f"empty {time.monotonic()}", flush=True)
                break
            time.sleep(0.005)
        else:
            print("timeout " + "; ".join(str(c) for c in changes[:3]), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])

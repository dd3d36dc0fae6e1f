"""One operator writing to the fleet's store (run as a script in the lab's operators' namespace).

Loops until COUNT commands ran or MAX_SECONDS passed: `wggw peer add TENANT/NAME` for the next
tenant in turn, and every second round `wggw peer remove` of the peer it added the round before,
each a real CLI process against the store in WGGW_DB, as a person or a cron job on another host
would. Appends one JSON line per command to LOG: {"cmd": "add"|"remove", "ref": ..., "rc": ...,
"t0": ..., "t1": ..., "err": last stderr line}, so the test knows which writes the store
confirmed (rc 0), which it refused while PostgreSQL was down (rc 69), and nothing else.

Usage: python3 operator.py NAME LOG COUNT MAX_SECONDS TENANT...
"""

from __future__ import annotations

import json
import subprocess
import sys
import time


def wggw(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "wggw.cli.entry", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def main() -> None:
    name, log_path, count, max_seconds, *tenants = sys.argv[1:]
    deadline = time.monotonic() + float(max_seconds)
    added: list[str] = []
    with open(log_path, "a", encoding="utf-8") as log:
        for i in range(int(count)):
            if time.monotonic() >= deadline:
                break
            if i % 2 == 1 and added:
                cmd, ref = "remove", added.pop(0)
            else:
                cmd, ref = "add", f"{tenants[i % len(tenants)]}/{name}-{i}"
            t0 = time.monotonic()
            res = wggw("peer", cmd, ref)
            if cmd == "add" and res.returncode == 0:
                added.append(ref)
            err = (res.stderr.strip().splitlines() or [""])[-1]
            line = {"cmd": cmd, "ref": ref, "rc": res.returncode, "t0": t0,
                    "t1": time.monotonic(), "err": err}  # fmt: skip
            log.write(json.dumps(line) + "\n")
            log.flush()


if __name__ == "__main__":
    main()

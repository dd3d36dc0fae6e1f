"""The audit chain's cost, in one run against its own baseline (no root, no namespaces):

    .venv/bin/python benchmarks/audit.py [--records N] [--repeats R]

- appending N records in one transaction (a bulk `peer add` of N peers writes N), chained
  (`Tx.record_event`: canonical JSON, SHA-256, fingerprints) vs the plain INSERT the store did
  before the chain existed;
- one agent repair record in a transaction of its own (`ops.audit.record_repairs`), the cost
  the agent adds to a repair round (after the repair: the host is repaired already);
- `audit verify` over the N records.
Medians with min/max over R repeats; ratios within the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from wggw.core import audit  # noqa: E402
from wggw.ops import audit as ops_audit  # noqa: E402
from wggw.store.sqlite import open_store  # noqa: E402

DETAILS = {
    "public_key": "Q4lfSdIga72Kdfcr0rVanB1rajFnDnYDRLG4YaYJyHY=",
    "addresses": ["10.0.0.2/32"],
}


def _chained(store, n: int) -> float:
    t = time.perf_counter()
    with store.transaction() as tx:
        for i in range(n):
            tx.record_event("peer.add", f"acme/p{i}", DETAILS)
    return time.perf_counter() - t


def _plain(store, n: int) -> float:
    """The pre-chain store's insert (schema 2), into a table of the same shape."""
    db = store._db
    t = time.perf_counter()
    with store.transaction():
        for i in range(n):
            db.execute(
                "INSERT INTO plain_events (at, kind, subject, details) VALUES (?, ?, ?, ?)",
                (time.time(), "peer.add", f"acme/p{i}", json.dumps(DETAILS, sort_keys=True)),
            )
    return time.perf_counter() - t


def _fmt(xs: list[float], unit: float, label: str) -> str:
    return f"{statistics.median(xs) * unit:.2f} [{min(xs) * unit:.2f}-{max(xs) * unit:.2f}] {label}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    n = args.records
    with tempfile.TemporaryDirectory() as tmp, open_store(Path(tmp) / "s", create=True) as store:
        store._db.execute(
            "CREATE TABLE plain_events (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL,"
            " kind TEXT NOT NULL, subject TEXT NOT NULL, details TEXT NOT NULL)"
        )
        store._db.execute("CREATE INDEX plain_subject ON plain_events(subject)")
        chained, plain, repair, verify = [], [], [], []
        for _ in range(args.repeats):  # alternated, so both see the same machine
            chained.append(_chained(store, n) / n)
            plain.append(_plain(store, n) / n)
            t = time.perf_counter()
            ops_audit.record_repairs(store, {"rule": ["ip rule add pref 10100 ..."]}, "drift")
            repair.append(time.perf_counter() - t)
        for _ in range(args.repeats):
            t = time.perf_counter()
            rows, head = store.audit_rows()
            assert audit.verify(rows, head) is None
            verify.append(time.perf_counter() - t)
        total = len(rows)
    ratio = statistics.median(chained) / statistics.median(plain)
    print(
        f"append, per record (us): chained {_fmt(chained, 1e6, '')}; plain {_fmt(plain, 1e6, '')}"
    )
    print(
        f"  ratio chained/plain {ratio:.2f}; extra for {n:,} records: "
        f"{(statistics.median(chained) - statistics.median(plain)) * n:.2f} s"
    )
    print(f"agent repair record, own transaction (ms): {_fmt(repair, 1e3, '')}")
    print(f"audit verify of {total:,} records (s): {_fmt(verify, 1, '')}")


if __name__ == "__main__":
    main()

"""Two reads at once: one on a short-lived thread, one on the caller's.

Observation waits on other processes (wireguard-go writing its UAPI dump, ~0.13 s at
50,000 peers; `nft` listing the table; the kernel filling netlink dumps), and those waits
release the GIL: reading the devices while the host is read overlaps real work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

A = TypeVar("A")
B = TypeVar("B")


def both(there: Callable[[], A], here: Callable[[], B]) -> tuple[A, B]:
    """(there(), here()): `there` runs on a thread while `here` runs on this one; both are
    waited for. A failure of `there` is raised first, then one of `here`."""
    result: list[A] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            result.append(there())
        except BaseException as e:  # noqa: BLE001 - handed to the caller below
            failed.append(e)

    worker = threading.Thread(target=run, name="wggw-observe", daemon=True)
    worker.start()
    try:
        mine = here()
    finally:
        worker.join()
        if failed:
            raise failed[0]  # also over a failure of `here`: the first named is raised
    return result[0], mine

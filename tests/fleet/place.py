"""Interim: place gateways with the store API until `wggw gateway add` lands (gw-cli)."""

from __future__ import annotations

import ipaddress
import sys
import time
from dataclasses import replace
from pathlib import Path

from wggw.core.model import Gateway
from wggw.store.select import open_store


def main() -> None:
    what, name, *rest = sys.argv[1:]
    with open_store(Path("/nonexistent")) as store, store.transaction() as tx:
        if what == "gateway":
            uplink, *via = rest
            vias = tuple(ipaddress.ip_address(v) for v in via)
            tx.add_gateway(Gateway(name, uplink, vias, time.time()))
        elif what == "interface":
            iface = tx.interface(name)
            assert iface is not None
            tx.update_interface(replace(iface, gateways=tuple(rest)))


if __name__ == "__main__":
    main()

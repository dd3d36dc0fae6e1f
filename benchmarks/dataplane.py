"""Data-plane measurements through a real WireGuard tunnel: a client namespace runs wireguard-go
as the *last* tenant's peer (for the naive manager, its ip rule and its iptables SNAT rule are the
last of the list), sends through the gateway (decrypt, tenant routing, SNAT) to the inet
namespace. New TCP connections per second (sequential connect + RST) and 64-byte UDP datagrams
per second counted by an nft counter in the inet namespace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from wggw.lab.netns import run, wait_until

from . import fleet as fleet_mod
from .lab import GW_UNDERLAY, INET_ADDR, LISTEN_PORT, Site
from .measure import env, in_ns

TCP_PORT, UDP_PORT = 8080, 9
COUNTER = (
    "table ip wbcount { chain pre { type filter hook prerouting priority 0;"
    " udp dport 9 counter drop; }; }"
)


def _secret(site: Site, name: str, value: str) -> str:
    path = site.dir / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return str(path)


def attach_client(site: Site, fl: fleet_mod.Fleet, server_seconds: float) -> str:
    """wireguard-go in the client namespace as peer p0 of the last tenant; an accept loop and
    a UDP counter in inet. Returns the client's interface name."""
    peer = next(p for p in fl.peer_list if p.tenant == fl.tenant_list[-1].name and p.name == "p0")
    ifname = site.bench.ifname()
    wg_env = {**os.environ, "WG_PROCESS_FOREGROUND": "1", "LOG_LEVEL": "error"}
    subprocess.Popen(
        ["ip", "netns", "exec", site.client, "wireguard-go", ifname],
        env=wg_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_until(
        lambda: os.path.exists(f"/var/run/wireguard/{ifname}.sock"),
        timeout=10,
        what="client wireguard-go",
    )
    key, psk = (
        _secret(site, "client.key", peer.private_key.reveal()),
        _secret(site, "client.psk", peer.psk.reveal()),
    )
    run(
        [
            "ip",
            "netns",
            "exec",
            site.client,
            "wg",
            "set",
            ifname,
            "private-key",
            key,
            "peer",
            fl.iface.public_key,
            "preshared-key",
            psk,
            "endpoint",
            f"{GW_UNDERLAY}:{LISTEN_PORT}",
            "allowed-ips",
            "0.0.0.0/0",
        ]
    )
    ip = lambda *a: run(["ip", "-n", site.client, *a])  # noqa: E731
    ip("addr", "add", str(peer.addresses[0]), "dev", ifname)
    ip("link", "set", ifname, "mtu", "1420", "up")
    ip("route", "add", "198.18.0.0/15", "dev", ifname)
    subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            site.inet,
            sys.executable,
            "-m",
            "benchmarks.traffic",
            "serve",
            INET_ADDR,
            str(TCP_PORT),
            str(server_seconds),
        ],
        env=env(),
        stdout=subprocess.DEVNULL,
        start_new_session=True,
        cwd=str(site.bench.workdir),
    )
    run(["ip", "netns", "exec", site.inet, "nft", "-f", "-"], input=COUNTER)
    _warm_up(site)
    return ifname


def _warm_up(site: Site) -> None:
    """The first packet starts the handshake; retry (bounded) until connections go through."""
    for _ in range(20):
        out = in_ns(
            site.client,
            [
                sys.executable,
                "-m",
                "benchmarks.traffic",
                "connrate",
                INET_ADDR,
                str(TCP_PORT),
                "20",
                "3",
            ],
        ).stdout.split()
        if int(out[0]) == 20:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{site.label}: no TCP connections through the tunnel after warm-up")


def connrate(site: Site, count: int, seconds: float) -> float:
    out = in_ns(
        site.client,
        [
            sys.executable,
            "-m",
            "benchmarks.traffic",
            "connrate",
            INET_ADDR,
            str(TCP_PORT),
            str(count),
            str(seconds),
        ],
    ).stdout.split()
    return int(out[0]) / float(out[1])


def _counted(site: Site) -> int:
    out = run(
        ["ip", "netns", "exec", site.inet, "nft", "-j", "list", "table", "ip", "wbcount"]
    ).stdout
    for obj in json.loads(out)["nftables"]:
        for expr in obj.get("rule", {}).get("expr", []):
            if "counter" in expr:
                return int(expr["counter"]["packets"])
    return 0


def udp_rate(site: Site, seconds: float) -> tuple[float, float]:
    """(received per second at inet, offered per second by the client)."""
    before = _counted(site)
    out = in_ns(
        site.client,
        [
            sys.executable,
            "-m",
            "benchmarks.traffic",
            "flood",
            INET_ADDR,
            str(UDP_PORT),
            str(seconds),
            "64",
        ],
    ).stdout.split()
    time.sleep(0.2)  # let queued datagrams drain before counting
    sent, elapsed = int(out[0]), float(out[1])
    return (_counted(site) - before) / elapsed, sent / elapsed


def measure(sites: dict[str, Site], rounds: int, count: int, seconds: float, log) -> dict:
    """Rounds interleave the configurations so machine load drifts hit them all alike."""
    conn = {k: [] for k in sites}
    pps = {k: [] for k in sites}
    offered = {k: [] for k in sites}
    for r in range(rounds):
        for key, site in sites.items():
            conn[key].append(connrate(site, count, seconds))
            rx, tx = udp_rate(site, seconds)
            pps[key].append(rx)
            offered[key].append(tx)
            log(
                f"data plane round {r + 1}/{rounds} {key}: "
                f"{conn[key][-1]:.0f} conn/s, {rx:.0f} pkt/s "
                f"(offered {tx:.0f})"
            )
    return {"conn_per_s": conn, "udp64_rx_pps": pps, "udp64_offered_pps": offered}

"""Fleet agents on PostgreSQL (issue 13), in one run against one throwaway cluster:

`propagation`: a gateway (`wggw agent --gateway gw1`, tenants x peers from PostgreSQL) and a
client namespace. Each change is a commit made here, on the operator's side (a new peer
whose key the client holds, written through the store's transaction API over the cluster's
socket); measured: commit -> the agent's log line of the round that applied it (its wall
clock, ms; the device then checked to hold the peer), and commit -> the client's first ICMP
answer from the internet namespace through the gateway (the client starts sending once the
peer is on the device: a handshake sent earlier is dropped and WireGuard retries it only
after 5 s, which would measure WireGuard's timer, not wggw). p50/p99 (nearest rank) over
`changes` commits.

`cold_start`: three gateways x `peers` peers in one PostgreSQL store, an agent per gateway
in its own namespace, started one after the other (2 cores: three cold starts at once would
measure the scheduler): the agent's start converge (its log's ms) and process start ->
converged; each followed by the same part from a SQLite store on a site of its own (the
same-run baseline).

`peer_add`: benchmarks/store.py's `peer add` on PostgreSQL vs SQLite (CLI and in-process).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from wggw.core import keys
from wggw.core.model import Gateway, Peer
from wggw.lab.pgcluster import Cluster, unusable
from wggw.store import sealed

from . import fleet as fleet_mod
from . import store as store_bench
from .agent import AgentProc, own_runtime_dir
from .lab import GW_UNDERLAY, INET_ADDR, LISTEN_PORT, Bench, Site
from .measure import in_ns, summary

PROBE = Path(__file__).with_name("fleet_probe.py")


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * 99 // 100) - 1)]


@contextmanager
def pg_env(url: str, key_file: Path) -> Iterator[None]:
    """The store every wggw process of this part uses (the agent inherits os.environ)."""
    saved = {k: os.environ.get(k) for k in ("WGGW_DB", "WGGW_KEY_FILE")}
    os.environ.update({"WGGW_DB": url, "WGGW_KEY_FILE": str(key_file)})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def pg_store(url: str, work: Path):
    """A fresh PostgreSQL store (schema and key id) and its key file; the open PgStore."""
    from wggw.store.postgres import PgStore

    key_file = work / "fleet.key"
    cipher = sealed.generate(key_file)
    return PgStore(url, work, create=True, cipher=cipher), key_file


def write_part(tx, fl: fleet_mod.Fleet, gateway: str) -> None:
    tx.add_interface(replace(fl.iface, gateways=(gateway,)))
    for t in fl.tenant_list:
        tx.add_tenant(t)
    for p in fl.peer_list:
        tx.add_peer(p)


def split(base: fleet_mod.Fleet, tenants: int, group: int, ifname: str) -> fleet_mod.Fleet:
    """Group `group` of `base`'s tenants (tenants each) on interface `ifname`."""
    names = {t.name for t in base.tenant_list[group * tenants : (group + 1) * tenants]}
    part = replace(
        base,
        tenant_list=[t for t in base.tenant_list if t.name in names],
        peer_list=[p for p in base.peer_list if p.tenant in names],
        tenants=tenants,
    )
    part = part.on(ifname)
    # one store: listen ports are unique across the fleet's interfaces
    priv, pub = keys.keypair()  # ... and so are their keys
    iface = replace(part.iface, listen_port=LISTEN_PORT + group, private_key=priv, public_key=pub)
    return replace(part, iface=iface)


# --- propagation ------------------------------------------------------------------------------
def device_keys(ifname: str) -> set[str]:
    """Public keys (hex) of the device's peers, over wireguard-go's UAPI socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2.0)
        s.connect(f"/var/run/wireguard/{ifname}.sock")
        s.sendall(b"get=1\n\n")
        data = b""
        while not data.endswith(b"\n\n"):
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            data += chunk
    return {
        line[len("public_key=") :]
        for line in data.decode().splitlines()
        if line.startswith("public_key=")
    }


class Client:
    """wireguard-go in the site's client namespace, and the probe (fleet_probe.py) that
    answers "how long until an echo reply from SRC"."""

    def __init__(self, site: Site, server_key: str) -> None:
        self.site, self.ifname, self.server_key = site, site.bench.ifname(), server_key
        wg_env = {**os.environ, "WG_PROCESS_FOREGROUND": "1", "LOG_LEVEL": "error"}
        subprocess.Popen(
            ["ip", "netns", "exec", str(site.client), "wireguard-go", self.ifname],
            env=wg_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while not os.path.exists(f"/var/run/wireguard/{self.ifname}.sock"):
            if time.monotonic() > deadline:
                raise RuntimeError("client wireguard-go did not start")
            time.sleep(0.02)
        self.wg(
            "peer",
            server_key,
            "endpoint",
            f"{GW_UNDERLAY}:{LISTEN_PORT}",
            "allowed-ips",
            "0.0.0.0/0",
        )
        self.ip("link", "set", self.ifname, "mtu", "1420", "up")
        self.ip("route", "add", "198.18.0.0/15", "dev", self.ifname)
        argv = ["ip", "netns", "exec", str(site.client), sys.executable, str(PROBE), INET_ADDR]
        self.probe = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def ip(self, *args: str) -> None:
        subprocess.run(["ip", "-n", str(self.site.client), *args], check=True, timeout=10)

    def wg(self, *args: str) -> None:
        subprocess.run(
            ["ip", "netns", "exec", str(self.site.client), "wg", "set", self.ifname, *args],
            check=True,
            timeout=10,
        )

    def become(self, private_key: str, address: str, psk: str) -> None:
        """The next peer: its key, PSK and address (no packet sent yet)."""
        key_path, psk_path = self.site.dir / "client.key", self.site.dir / "client.psk"
        for path, value in ((key_path, private_key), (psk_path, psk)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(value + "\n")
        self.wg("private-key", str(key_path))
        self.wg("peer", self.server_key, "preshared-key", str(psk_path))
        self.ip("addr", "add", f"{address}/32", "dev", self.ifname)
        # the kernel drops a device's routes with its last IPv4 address (the flush before)
        self.ip("route", "replace", "198.18.0.0/15", "dev", self.ifname)

    def answer(self, address: str, timeout: float = 10.0) -> float:
        assert self.probe.stdin is not None and self.probe.stdout is not None
        self.probe.stdin.write(f"{address} {timeout}\n")
        self.probe.stdin.flush()
        reply = self.probe.stdout.readline().split()
        if not reply or reply[0] != "ok":
            cmds = [
                ["ip", "-n", str(self.site.client), "route"],
                ["ip", "-n", str(self.site.client), "addr", "show", self.ifname],
                ["ip", "netns", "exec", str(self.site.client), "wg", "show", self.ifname],
                ["ip", "-n", str(self.site.gw), "rule"],
                ["ip", "-n", str(self.site.gw), "route", "show", "table", "all"],
                ["ip", "-n", str(self.site.gw), "-4", "addr"],
                ["ip", "netns", "exec", str(self.site.gw), "nft", "list", "ruleset"],
            ]
            show = "\n".join(subprocess.run(c, capture_output=True, text=True).stdout for c in cmds)
            raise RuntimeError(f"no answer from {INET_ADDR} to {address}: {reply} {show}")
        return float(reply[1])

    def close(self) -> None:
        self.probe.kill()
        self.probe.wait(5)


def propagation(bench: Bench, cluster: Cluster, size: tuple[int, int], changes: int, log) -> dict:
    tenants, peers = size
    site = bench.site("fp", client=True)
    work = site.dir
    store, key_file = pg_store(cluster.createdb(), work)
    base = fleet_mod.make(site.ifname, tenants, peers)
    with store.transaction() as tx:
        tx.add_gateway(Gateway("gw1", uplink="uplink0", created_at=time.time()))
        write_part(tx, base, "gw1")
    agent = client = None
    try:
        with pg_env(store.url, key_file), own_runtime_dir(work / "run"):
            agent = AgentProc(site, work, "--gateway", "gw1")
            client = Client(site, base.iface.public_key)
            applied, answered = [], []
            tenant = base.tenant_list[0]
            for i in range(changes):
                priv, pub = keys.keypair()
                addr = str(list(tenant.pools[0].hosts())[200 - i % 50 - 1])
                client.ip("addr", "flush", "dev", client.ifname)
                psk = keys.generate_psk()
                client.become(priv.reveal(), addr, psk.reveal())
                peer = Peer(
                    tenant.name,
                    f"prop{i}",
                    pub,
                    (ipaddress.ip_interface(f"{addr}/32"),),
                    time.time(),
                    psk=psk,
                    created_at=time.time(),
                )
                with store.transaction() as tx:
                    old = tx.peer(tenant.name, f"prop{i - 50}") if i >= 50 else None
                    if old is not None:
                        tx.remove_peer(tenant.name, old.name)
                    tx.add_peer(peer)
                committed = time.time()
                took = applied_at(agent, store.generation(), _hex(pub), site.ifname) - committed
                applied.append(took)
                answered.append(applied[-1] + client.answer(addr))
            out = {"tenants": tenants, "peers": tenants * peers, "changes": changes}
            for name, values in (("applied_s", applied), ("answered_s", answered)):
                out[name] = {**summary(values), "p99": p99(values)}
            ms = {k: (out[k]["median"] * 1000, out[k]["p99"] * 1000) for k in out if k[-2:] == "_s"}
            log(
                f"fleet propagation at {tenants * peers} peers: commit->applied p50/p99 "
                f"{ms['applied_s'][0]:.0f}/{ms['applied_s'][1]:.0f} ms; commit->answer "
                f"{ms['answered_s'][0]:.0f}/{ms['answered_s'][1]:.0f} ms"
            )
            return out
    finally:
        if client is not None:
            client.close()
        if agent is not None:
            agent.stop()
        store.close()
        site.close()


def applied_at(agent: AgentProc, generation: int, hexkey: str, ifname: str) -> float:
    """When the agent logged the round that applied `generation` (its log's wall clock, ms),
    checked against the device once. The log is read every 2 ms: polling the device instead
    (a UAPI dump of every peer) would load wireguard-go, the agent's host, with the bench."""
    pattern = re.compile(rf"^(\S+) converged trigger=store .* generation={generation}$", re.M)
    deadline = time.monotonic() + 10
    while (m := pattern.search(agent.log())) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"generation {generation} not applied after 10 s")
        time.sleep(0.002)
    if hexkey not in device_keys(ifname):
        raise RuntimeError(f"generation {generation} logged as applied, its peer is not there")
    stamp = datetime.datetime.strptime(m[1], "%Y-%m-%dT%H:%M:%S.%fZ")
    return stamp.replace(tzinfo=datetime.UTC).timestamp()


def _hex(public_key: str) -> str:
    import base64

    return base64.b64decode(public_key).hex()


# --- cold start ---------------------------------------------------------------------------------
def cold_start(bench: Bench, cluster: Cluster, size: tuple[int, int], log) -> dict:
    """Three gateways of tenants x peers each from PostgreSQL, one after the other, each
    followed by the same part from SQLite on a site of its own (the same-run baseline,
    interleaved so that both see the same machine)."""
    tenants, peers = size
    sites = [bench.site(f"fc{g}") for g in range(3)]
    base = fleet_mod.make("x", 3 * tenants, peers)
    store, key_file = pg_store(cluster.createdb(), sites[0].dir)
    parts = [split(base, tenants, g, sites[g].ifname) for g in range(3)]
    with store.transaction() as tx:
        for g, part in enumerate(parts):
            tx.add_gateway(Gateway(f"gw{g + 1}", uplink="uplink0", created_at=time.time()))
            write_part(tx, part, f"gw{g + 1}")
    store.close()
    out: dict = {"tenants": tenants, "peers_per_gateway": tenants * peers, "mode": "sequential"}
    pg_ms, pg_s, lite_ms, lite_s = [], [], [], []
    try:
        for g, site in enumerate(sites):
            with pg_env(store.url, key_file), own_runtime_dir(site.dir / "run"):
                agent = AgentProc(site, site.dir, "--gateway", f"gw{g + 1}")
                pg_ms.append(agent.start_ms / 1000)
                pg_s.append(agent.start_s)
                out["start_changes"] = agent.start_changes
                agent.stop()
                _check_only_part(site, parts[g])
            ms, secs = _sqlite_start(bench, base, tenants, g)
            lite_ms.append(ms)
            lite_s.append(secs)
    finally:
        for site in sites:
            site.close()
    out["postgresql_converge_s"] = summary(pg_ms)
    out["postgresql_process_s"] = summary(pg_s)
    out["sqlite_converge_s"] = summary(lite_ms)
    out["sqlite_process_s"] = summary(lite_s)
    out["postgresql_over_sqlite"] = round(statistics.median(pg_s) / statistics.median(lite_s), 2)
    log(
        f"fleet cold start, 3 x {tenants * peers} peers from PostgreSQL (sequential): "
        f"converge {[round(v, 2) for v in pg_ms]} s, process start->converged "
        f"{[round(v, 2) for v in pg_s]} s; SQLite {[round(v, 2) for v in lite_s]} s "
        f"({out['postgresql_over_sqlite']}x)"
    )
    return out


def _sqlite_start(bench: Bench, base: fleet_mod.Fleet, tenants: int, g: int) -> tuple[float, float]:
    """The agent's cold start of gateway part `g` from a SQLite store: (converge, process) s."""
    lite = bench.site(f"fs{g}")
    try:
        sd = lite.dir / "state"
        fleet_mod.write_store(split(base, tenants, g, lite.ifname), sd)
        with own_runtime_dir(lite.dir / "run"):
            agent = AgentProc(lite, sd)
            agent.stop()
            return agent.start_ms / 1000, agent.start_s
    finally:
        lite.close()


def _check_only_part(site: Site, part: fleet_mod.Fleet) -> None:
    """The gateway holds its own part only: as many peers as the part has."""
    out = in_ns(site.gw, ["wg", "show", site.ifname, "peers"]).stdout.split()
    if len(out) != len(part.peer_list):
        raise RuntimeError(
            f"{site.label}: {len(out)} peers on the device, want {len(part.peer_list)}"
        )


# --- the part ------------------------------------------------------------------------------------
def run_part(bench: Bench, cfg: dict, log) -> dict:
    why = unusable()
    if why:
        return {"skipped": why}
    cluster = Cluster()
    out: dict = {}
    try:
        cluster.start()
        out["propagation"] = propagation(
            bench, cluster, cfg["fleet_prop"], cfg["fleet_changes"], log
        )
        out["cold_start"] = cold_start(bench, cluster, cfg["fleet_cold"], log)
        out["peer_add"] = store_bench.measure(cluster, cfg["fleet_adds"])
        pa = out["peer_add"]
        log(
            f"peer add (CLI) PostgreSQL {pa['postgresql']['cli_peer_add_s']['median']:.3f}s vs "
            f"SQLite {pa['sqlite']['cli_peer_add_s']['median']:.3f}s "
            f"({pa['postgresql']['cli_peer_add_vs_sqlite']}x)"
        )
        return out
    finally:
        cluster.remove()


def rows(results: dict) -> list[tuple[str, str, str, str]]:
    """Rows for the report table: (what, wggw, baseline, ratio)."""
    out = []
    prop = results.get("propagation")
    if prop:
        for key in ("applied_s", "answered_s"):
            v = prop[key]
            out.append(
                (
                    f"fleet commit->{key[:-2]} p50/p99 ({prop['peers']} peers)",
                    f"{v['median'] * 1000:.0f}/{v['p99'] * 1000:.0f} ms",
                    "p99 <= 1 s",
                    "",
                )
            )
    cold = results.get("cold_start")
    if cold:
        out.append(
            (
                f"fleet cold start 3 x {cold['peers_per_gateway']} peers (PostgreSQL)",
                f"{cold['postgresql_process_s']['median']:.2f} s",
                f"SQLite {cold['sqlite_process_s']['median']:.2f} s",
                f"{cold['postgresql_over_sqlite']}x",
            )
        )
    pa = results.get("peer_add")
    if pa:
        out.append(
            (
                "peer add CLI PostgreSQL vs SQLite",
                f"{pa['postgresql']['cli_peer_add_s']['median']:.3f} s",
                f"{pa['sqlite']['cli_peer_add_s']['median']:.3f} s",
                f"{pa['postgresql']['cli_peer_add_vs_sqlite']}x",
            )
        )
        out.append(
            (
                "peer add in-process PostgreSQL vs SQLite",
                f"{pa['postgresql']['op_peer_add_s']['median'] * 1000:.1f} ms",
                f"{pa['sqlite']['op_peer_add_s']['median'] * 1000:.1f} ms",
                f"{pa['postgresql']['op_peer_add_vs_sqlite']}x",
            )
        )
    return out

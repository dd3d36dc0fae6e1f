"""Lab WireGuard: wireguard-go processes and full-tunnel clients built from wg-quick configs.

Part of the test/demo harness (`wggw.lab.topology`). A client takes exactly what `wggw peer config`
prints and does what wg-quick would do with it, minus DNS and firewall marks: run wireguard-go,
`wg setconf` the stripped config from a 0600 file (private keys never on a command line), add the
addresses, set the MTU, and route everything through the tunnel except the host route to the
gateway's endpoint.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from wggw.lab.netns import LabError, Namespace, ProcessTable, run, wait_until

WG_SOCKET_DIR = Path("/var/run/wireguard")
_START_TIMEOUT = 10.0


@dataclass(frozen=True)
class ClientConf:
    """The wg-quick-only parts of a client config that the lab applies itself."""

    addresses: tuple[str, ...]
    mtu: int | None
    dns: tuple[str, ...]
    endpoint: str | None


def parse_client_conf(text: str) -> ClientConf:
    """Read Address/MTU/DNS of [Interface] and Endpoint of the first [Peer] (keys
    case-insensitive)."""
    values: dict[str, list[str]] = {"address": [], "mtu": [], "dns": [], "endpoint": []}
    section = ""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("["):
            section = line.strip("[]").lower()
        elif "=" in line:
            key, val = (s.strip() for s in line.split("=", 1))
            key = key.lower()
            wanted = {"interface": ("address", "mtu", "dns"), "peer": ("endpoint",)}.get(
                section, ()
            )
            if key in wanted:
                values[key] += [v.strip() for v in val.split(",") if v.strip()]
    if not values["address"]:
        raise LabError("client config has no [Interface] Address")
    return ClientConf(
        addresses=tuple(values["address"]),
        mtu=int(values["mtu"][0]) if values["mtu"] else None,
        dns=tuple(values["dns"]),
        endpoint=values["endpoint"][0] if values["endpoint"] else None,
    )


def endpoint_ip(endpoint: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address of `HOST:PORT` or `[V6]:PORT`; the lab has no DNS, so HOST must be literal."""
    host = endpoint.rsplit(":", 1)[0].strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError as exc:
        raise LabError(f"endpoint {endpoint!r}: the lab needs a literal IP address") from exc


def new_ifname(prefix: str = "wgc") -> str:
    """A WireGuard interface name unused host-wide (wireguard-go sockets share one directory)."""
    for _ in range(32):
        name = f"{prefix}{secrets.token_hex(3)}"
        if len(name) <= 15 and not (WG_SOCKET_DIR / f"{name}.sock").exists():
            return name
    raise LabError(f"no free interface name with prefix {prefix!r}")


def write_secret_file(path: Path, text: str) -> Path:
    """Create `path` 0600 from the start (never chmod-ed after), failing if it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    return path


def start_wireguard_go(ns: Namespace, ifname: str) -> int:
    """Run `wireguard-go IFNAME` in the foreground inside `ns`; return its PID once it serves
    UAPI."""
    sock = WG_SOCKET_DIR / f"{ifname}.sock"
    if sock.exists():
        raise LabError(f"{sock} exists: interface name {ifname} is in use on this host")
    log = ns.workdir / f"wireguard-go-{ifname}.log"
    proc = ns.spawn(
        ["wireguard-go", ifname], marker=ifname, log=log, env={"WG_PROCESS_FOREGROUND": "1"}
    )

    def ready() -> bool:
        if proc.poll() is not None:
            raise LabError(
                f"wireguard-go {ifname} in {ns.name} exited {proc.returncode}: "
                f"{log.read_text(errors='replace').strip()}"
            )
        return sock.exists()

    wait_until(ready, timeout=_START_TIMEOUT, what=f"wireguard-go {ifname} socket")
    return proc.pid


def stop_wireguard_go(ns: Namespace, ifname: str, pid: int) -> None:
    """Stop the process, then remove whatever it left behind (link, socket)."""
    ns.procs.stop(pid)
    ns.ip("link", "del", ifname, check=False)
    sock = WG_SOCKET_DIR / f"{ifname}.sock"
    sock.unlink(missing_ok=True)


def setconf_from_text(ns: Namespace, ifname: str, conf_text: str) -> None:
    """`wg setconf` what `wg-quick strip` makes of `conf_text`, through 0600 files only."""
    tmp = ns.workdir / f"conf-{secrets.token_hex(4)}"
    tmp.mkdir(mode=0o700)
    try:
        # wg-quick derives the interface name from the file name, so it must be IFNAME.conf.
        full = write_secret_file(tmp / f"{ifname}.conf", conf_text)
        stripped = run(["wg-quick", "strip", str(full)]).stdout
        ns.run(["wg", "setconf", ifname, str(write_secret_file(tmp / "stripped.conf", stripped))])
    finally:
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()


@dataclass
class Tunnel:
    ifname: str
    pid: int
    conf: ClientConf


class Client(Namespace):
    """A tenant's client machine: an underlay link to the gateway and, once up, a full tunnel."""

    def __init__(
        self,
        name: str,
        procs: ProcessTable,
        workdir: Path,
        *,
        role: str,
        underlay_addr: str,
        underlay_dev: str,
    ) -> None:
        super().__init__(name, procs, workdir)
        self.role = role
        self.underlay_addr = underlay_addr
        self.underlay_dev = underlay_dev
        self.tunnel: Tunnel | None = None

    @property
    def wg_ifname(self) -> str | None:
        return self.tunnel.ifname if self.tunnel else None

    @property
    def tunnel_addresses(self) -> tuple[str, ...]:
        """The client's addresses inside the tunnel, without prefix length."""
        if not self.tunnel:
            return ()
        return tuple(a.split("/")[0] for a in self.tunnel.conf.addresses)

    def up_wireguard(self, conf_text: str) -> str:
        """Bring up a full tunnel from a wg-quick client config; return the interface name."""
        if self.tunnel:
            raise LabError(f"{self.name}: tunnel {self.tunnel.ifname} is already up")
        conf = parse_client_conf(conf_text)
        ifname = new_ifname()
        pid = start_wireguard_go(self, ifname)
        self.tunnel = Tunnel(ifname=ifname, pid=pid, conf=conf)
        try:
            setconf_from_text(self, ifname, conf_text)
            self._address_and_route(self.tunnel)
        except BaseException:
            self.down_wireguard()
            raise
        return ifname

    def _address_and_route(self, tun: Tunnel) -> None:
        for addr in tun.conf.addresses:
            # nodad: the tunnel address is ours alone; DAD would only delay the first v6 packet.
            extra = ["nodad"] if ":" in addr else []
            self.ip("addr", "add", addr, "dev", tun.ifname, *extra)
        self.ip(
            "link", "set", tun.ifname, *(["mtu", str(tun.conf.mtu)] if tun.conf.mtu else []), "up"
        )
        if tun.conf.endpoint:
            # The host route keeps the encrypted packets on the underlay once default points
            # into the tunnel (what wg-quick achieves with fwmark rules, done the simple way).
            ep = endpoint_ip(tun.conf.endpoint)
            fam = "-6" if ep.version == 6 else "-4"
            self.ip(fam, "route", "replace", f"{ep}/{ep.max_prefixlen}", "dev", self.underlay_dev)
        families = {"-6" if ":" in a else "-4" for a in tun.conf.addresses}
        for fam in sorted(families):
            self.ip(fam, "route", "replace", "default", "dev", tun.ifname)

    def down_wireguard(self) -> None:
        """Remove the tunnel (idempotent): the process, its link, socket and default routes."""
        tun, self.tunnel = self.tunnel, None
        if tun is None:
            return
        # Deleting the link takes its routes with it; the endpoint host route stays harmlessly.
        stop_wireguard_go(self, tun.ifname, tun.pid)

    def replace_wireguard(self, conf_text: str) -> str:
        """Swap the tunnel for one built from a new config (a fresh interface and process)."""
        self.down_wireguard()
        return self.up_wireguard(conf_text)

    def endpoints(self) -> set[str]:
        """The endpoints the tunnel's peers have now (HOST:PORT; WireGuard roams them)."""
        if not self.tunnel:
            return set()
        out = self.run(["wg", "show", self.tunnel.ifname, "endpoints"]).stdout
        return {f[1] for f in (line.split() for line in out.splitlines()) if len(f) == 2}

    def handshake_age(self) -> float | None:
        """Seconds since the most recent handshake of any peer, or None if there was none."""
        if not self.tunnel:
            return None
        out = self.run(["wg", "show", self.tunnel.ifname, "latest-handshakes"]).stdout
        stamps = [int(line.split()[1]) for line in out.splitlines() if len(line.split()) == 2]
        latest = max((s for s in stamps if s > 0), default=0)
        return time.time() - latest if latest else None

"""High availability on one gateway (issue 14): keepalived's configuration for this gateway's
HA interfaces, written into wggw's runtime dir and reloaded (SIGHUP) only when its text
changes; the health keepalived tracks; and the takeover kick (handshakes to each peer's last
endpoint, so clients do not wait for their own ~15 s retry).

keepalived runs beside the agent, not under it (templates/wggw-keepalived.service; the tests
start a throwaway one with the same file): the agent renders and reloads, keepalived decides
who holds the addresses, and it tracks the agent's health through its own script.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from wggw.backends import hanet, runfiles
from wggw.core import fleet, ha
from wggw.core.desired import device_spec
from wggw.core.model import State
from wggw.fsutil import atomic_write
from wggw.ops import render
from wggw.ops.agentclient import socket_path

Echo = Callable[[str], None] | None
HOOK = Path(__file__).resolve().parent.parent / "agent" / "hahook.py"


@dataclass(frozen=True)
class Settings:
    """How this gateway runs VRRP. Give every gateway of an interface the same values."""

    gateway: str
    failback: str = "preempt"  # or "nopreempt": a recovered first gateway does not take over
    advert_int: float = 0.5  # s; the backup takes over after ~3.6 advertisements of silence
    check_interval: float = 1.0  # s between health checks
    check_timeout: float = 2.0  # a check not answered within this fails (a frozen agent)
    check_fall: int = 2  # failed checks in a row before the addresses are given up
    check_rise: int = 2
    garp_refresh: int = 10


def conf_path() -> Path:
    return runfiles.runtime_dir() / "keepalived.conf"


def pid_path() -> Path:
    return runfiles.runtime_dir() / "keepalived.pid"


def hook_command(*args: str) -> str:
    """The track/notify command: this Python and the stdlib-only hook, which talks to the
    agent's control socket (absolute paths: keepalived runs it with its own environment)."""
    return " ".join([sys.executable, "-I", str(HOOK), *args])


def config_text(state: State, settings: Settings, facts) -> str | None:
    """keepalived's configuration for `state` on this host; None when no interface of it
    runs here in HA (no file, no keepalived needed)."""
    return render_config(state, settings, facts, hanet.connected())


def render_config(state: State, settings: Settings, facts, connected) -> str | None:
    """The same from given host facts and each device's addresses (no I/O)."""
    found = ha.instances(state, settings.gateway, facts, connected, settings.failback)
    if not found:
        return None
    sock = str(socket_path())
    return render._template("keepalived.conf.j2").render(
        gateway=settings.gateway,
        router_id=f"wggw-{settings.gateway}",
        instances=found,
        top=ha.TOP_PRIORITY,
        advert_int=f"{settings.advert_int:g}",
        garp_refresh=settings.garp_refresh,
        check=hook_command("check", sock),
        check_interval=f"{settings.check_interval:g}",
        check_timeout=f"{settings.check_timeout:g}",
        check_fall=settings.check_fall,
        check_rise=settings.check_rise,
        notify=hook_command("notify", sock),
    )


def sync_config(text: str | None, path: Path | None = None, pidfile: Path | None = None) -> bool:
    """Write `text` if it differs from the file and reload keepalived; True when it did.
    None (no HA here): a file already there gets an empty configuration (keepalived, if it
    runs, gives every address up); none is created."""
    path, pidfile = path or conf_path(), pidfile or pid_path()
    if text is None:
        if not path.exists():
            return False
        text = "# wggw: no interface of this gateway runs in HA\n"
    try:
        if path.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    atomic_write(path, text, 0o600)
    hanet.reload(pidfile)
    return True


def uplinks(state: State, facts) -> frozenset[str]:
    """The devices this gateway's tenants leave by (their uplink, or main's default route)."""
    out = set()
    for t in state.tenants:
        for ip in t.egress:
            main = facts.default_routes.get(ip.version)
            dev = t.uplink or (main.dev if main else None)
            if dev:
                out.add(dev)
    return frozenset(out)


def healthy(devs: frozenset[str], converged: bool) -> tuple[bool, str]:
    """What keepalived tracks: the last round converged and every uplink of this gateway's
    tenants can carry traffic (one link dump: the check runs every second). (ok, reason)."""
    if not converged:
        return False, "not converged"
    down = hanet.links_down(devs)
    if down:
        return False, f"uplink down: {', '.join(down)}"
    return True, "ok"


def takeover(store, state: State, interface: str, system, echo: Echo = None) -> int:
    """This gateway just became the active one for `interface`: set each peer's last
    endpoint (as any gateway reported it) and have WireGuard start a handshake with it now.
    Returns how many peers were kicked."""
    return kick_peers(store, state, interface, system, None, echo)


def kick_peers(
    store, state: State, interface: str, system, tenants: set[str] | None, echo: Echo = None
) -> int:
    """Set the last endpoint of the peers of `tenants` (None: all) on `interface`, as any
    gateway reported it, and have WireGuard start a handshake with each now: their clients
    roam to this gateway at once instead of after their own ~15 s retry. Returns how many."""
    iface = next((i for i in state.interfaces if i.name == interface), None)
    if iface is None:
        return 0
    tenants = {t.name for t in state.tenants_of(interface) if tenants is None or t.name in tenants}
    spec = device_spec(iface, (p for p in state.peers if p.tenant in tenants))
    last = fleet.last_endpoints(store.peer_reports())
    known = [p for p in spec.peers if p.public_key in last and not p.keepalive]
    if not known:
        return 0
    with_endpoint = [replace(p, endpoint=last[p.public_key].endpoint) for p in known]
    # Removed and re-added in one request: a session left from an earlier stint as the active
    # gateway (a failback) would carry the kick's keepalive and start no handshake, while the
    # client has long moved to another session (measured: 5-15 s instead of < 1 s).
    system.wg.set_peers(interface, with_endpoint, [p.public_key for p in known])
    system.kick(interface, known, echo)
    return len(known)


def local_addresses() -> set[str]:
    """Every address on this host's devices (is a floating address here now?)."""
    return {str(a.ip) for addrs in hanet.connected().values() for a in addrs}


def keepalived_pid() -> int | None:
    return hanet.running_pid(pid_path())

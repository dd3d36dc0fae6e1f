"""The contract both WireGuard backends pass (kernel genetlink, wireguard-go UAPI), run for real
in throwaway network namespaces.

The backend code never deals with namespaces, so each namespace gets a small Python worker
(`ip netns exec NS python3 -c WORKER`) that drives one backend and answers JSON lines on stdin/
stdout: private keys travel through that pipe, never argv. The kernel variant skips with the
reason where the module is missing. Every namespace, process, socket and pid file a test makes
is removed by its fixture, also when the test fails.
"""

from __future__ import annotations

import ipaddress
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wggw.backends import runfiles
from wggw.core import keys, naming
from wggw.core.keys import Secret
from wggw.core.wgtypes import WgDeviceState, WgPeerSpec, WgPeerState
from wggw.lab.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[2]
CALL_TIMEOUT = 30.0

WORKER = r"""
import dataclasses, json, os, sys
from wggw.backends.select import select_backend
from wggw.backends.wg_userspace import UserspaceBackend
from wggw.core.errors import BackendError
from wggw.core.keys import Secret
from wggw.core.wgtypes import WgPeerSpec

def state(s):
    if s is None:
        return None
    return {"name": s.name, "public_key": s.public_key, "listen_port": s.listen_port,
            # the fields only: a state may carry a memo of the spec it matched (wgtypes)
            "peers": {k: {**{f.name: getattr(p, f.name) for f in dataclasses.fields(p)},
                          "psk": p.psk.reveal() if p.psk else None,
                          "allowed_ips": list(p.allowed_ips)} for k, p in s.peers.items()}}

def spec(d):
    return WgPeerSpec(d["public_key"], Secret(d["psk"]) if d["psk"] else None,
                      tuple(d["allowed_ips"]), d["keepalive"], d.get("endpoint"))

def select(name, env):
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return select_backend(name).kind
    finally:
        os.environ.clear()
        os.environ.update(saved)

try:
    be = select_backend(sys.argv[1])
    print(json.dumps({"ready": be.kind}), flush=True)
except BackendError as e:
    print(json.dumps({"unavailable": str(e)}), flush=True)
    be = None
OPS = {
    "list_devices": lambda: be.list_devices(),
    "observe": lambda n: state(be.observe(n)),
    "create": lambda n: be.create(n),
    "delete": lambda n: be.delete(n),
    "configure": lambda n, k, p: be.configure(n, Secret(k), p),
    "set_peers": lambda n, up, rm: be.set_peers(n, [spec(d) for d in up], rm),
    "kick": lambda n, up: be.kick(n, [spec(d) for d in up]),
    "select": select,
    "create_with": lambda binary, n: UserspaceBackend(binary).create(n),
}
for line in sys.stdin:
    req = json.loads(line)
    try:
        out = {"ok": OPS[req["op"]](*req["args"])}
    except Exception as e:
        out = {
            "error": type(e).__name__,
            "msg": str(e),
            "backend_error": isinstance(e, BackendError),
        }
    print(json.dumps(out), flush=True)
"""


# One ICMP echo over a raw socket (these hosts need not have iputils-ping); exit 0 on a reply.
PING = r"""
import os, socket, struct, sys, time
def csum(b):
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b)); t = (t >> 16) + (t & 0xFFFF)
    return ~(t + (t >> 16)) & 0xFFFF
ident, addr = os.getpid() & 0xFFFF, sys.argv[1]
body = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"wggw-test-echo!!"
pkt = body[:2] + struct.pack("!H", csum(body)) + body[4:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.sendto(pkt, (addr, 0))
deadline = time.monotonic() + 1.0
while time.monotonic() < deadline:
    s.settimeout(max(deadline - time.monotonic(), 0.01))
    try:
        data, src = s.recvfrom(2048)
    except socket.timeout:
        break
    icmp = data[(data[0] & 15) * 4:]
    if src[0] == addr and icmp[0] == 0 and struct.unpack("!H", icmp[4:6])[0] == ident:
        sys.exit(0)
sys.exit(1)
"""


class WorkerError(Exception):
    def __init__(self, reply: dict):
        self.kind, self.backend_error = reply["error"], reply["backend_error"]
        super().__init__(f"{reply['error']}: {reply['msg']}")


class Worker:
    """One backend, driven from inside one namespace."""

    def __init__(self, ns: str, backend: str):
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c", WORKER, backend],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=env,
        )
        self.hello = self._read()

    def _read(self) -> dict:
        ready, _, _ = select.select([self.proc.stdout], [], [], CALL_TIMEOUT)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(f"worker gave no answer within {CALL_TIMEOUT:g} s")
        return json.loads(line)

    def call(self, op: str, *args):
        self.proc.stdin.write(json.dumps({"op": op, "args": args}) + "\n")
        self.proc.stdin.flush()
        reply = self._read()
        if "error" in reply:
            raise WorkerError(reply)
        return reply["ok"]

    def observe(self, ifname: str) -> WgDeviceState | None:
        raw = self.call("observe", ifname)
        if raw is None:
            return None
        peers = {
            k: WgPeerState(
                **{
                    **p,
                    "psk": Secret(p["psk"]) if p["psk"] else None,
                    "allowed_ips": tuple(p["allowed_ips"]),
                }
            )
            for k, p in raw["peers"].items()
        }
        return WgDeviceState(raw["name"], raw["public_key"], raw["listen_port"], peers)

    def set_peers(self, ifname: str, upsert=(), remove=()) -> None:
        self.call("set_peers", ifname, wire(upsert), list(remove))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stdout.close()


def wire(specs) -> list[dict]:
    return [
        {
            "public_key": s.public_key,
            "psk": s.psk.reveal() if s.psk else None,
            "allowed_ips": list(s.allowed_ips),
            "keepalive": s.keepalive,
            "endpoint": s.endpoint,
        }
        for s in specs
    ]


class Env:
    """Namespaces, interface names and workers of one test, all undone by `cleanup` (the
    namespaces and names are a wggw.lab Sandbox's, as in every lab of the project)."""

    def __init__(self, backend: str):
        self.backend = backend
        self.box = Sandbox(prefix="wggwt", short="wt")
        self.workers: list[Worker] = []
        self.foreign: list[subprocess.Popen] = []

    def ns(self) -> str:
        return self.box.add_ns(f"n{len(self.box.namespaces)}").name

    def ifname(self) -> str:
        return self.box.ifname()

    def worker(self, ns: str) -> Worker:
        w = Worker(ns, self.backend)
        self.workers.append(w)
        if "unavailable" in w.hello:
            pytest.skip(w.hello["unavailable"])
        return w

    def cleanup(self) -> list[str]:
        """Undo everything, each step on its own, so one failure does not leave the rest."""
        problems: list[str] = []
        for closing in [
            *(w.close for w in self.workers),
            *(lambda p=p: stop_popen(p) for p in self.foreign),
        ]:
            try:
                closing()
            except Exception as e:  # report and go on: the next step must still run
                problems.append(repr(e))
        return problems + self.box.close() + self.box.leftovers()


def stop_popen(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait(5)


def sh(ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=15, check=check
    )


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def pid_of(ifname: str) -> int | None:
    try:
        return int(runfiles.pid_file(ifname).read_text())
    except OSError:
        return None


def link_exists(ns: str, ifname: str) -> bool:
    return sh(ns, "ip", "link", "show", "dev", ifname, check=False).returncode == 0


def peer(allowed: tuple[str, ...], psk: bool = False, keepalive: int | None = None) -> WgPeerSpec:
    """A new peer in wgtypes' normal form (canonical CIDRs, sorted), as the planner passes it."""
    cidrs = tuple(sorted(str(ipaddress.ip_network(c)) for c in allowed))
    return WgPeerSpec(keys.keypair()[1], keys.generate_psk() if psk else None, cidrs, keepalive)


def _env(backend: str):
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, wireguard-go)")
    e = Env(backend)
    yield e
    problems = e.cleanup()
    assert not problems, problems


@pytest.fixture(params=["userspace", "kernel"])
def env(request):
    """The contract runs against both backends; kernel skips where the module is missing."""
    yield from _env(request.param)


@pytest.fixture
def userspace_env():
    yield from _env("userspace")


# --- the contract ---------------------------------------------------------------------------


def test_create_observe_configure(env):
    ns = env.ns()
    wg, name = env.worker(ns), env.ifname()
    assert wg.observe(name) is None
    wg.call("create", name)
    assert wg.call("list_devices") == [name]
    assert "wggw-managed" in sh(ns, "ip", "link", "show", "dev", name).stdout
    fresh = wg.observe(name)
    assert (fresh.public_key, fresh.peers) == (None, {})
    priv, pub = keys.keypair()
    wg.call("configure", name, priv.reveal(), 51820)
    state = wg.observe(name)
    assert (state.name, state.public_key, state.listen_port) == (name, pub, 51820)
    pid = pid_of(name)
    wg.call("create", name)  # idempotent: the same device (and process) stays
    assert pid_of(name) == pid and wg.observe(name).public_key == pub


def test_set_peers_add_change_remove(env):
    wg, name = env.worker(env.ns()), env.ifname()
    wg.call("create", name)
    wg.call("configure", name, keys.generate_private().reveal(), 51820)
    a = peer(("198.51.100.10/32",), psk=True, keepalive=25)
    b = peer(("192.0.2.0/28", "2001:db8:1::/64", "2001:db8::2/128"))
    c = peer(("192.0.2.77/32",), psk=True)
    wg.set_peers(name, [a, b, c])
    assert specs(wg, name) == {p.public_key: p for p in (a, b, c)}

    # Change every field kind: allowed IPs, PSK set and cleared, keepalive set and cleared.
    a2 = WgPeerSpec(a.public_key, None, ("198.51.100.11/32", "2001:db8::11/128"), None)
    b2 = WgPeerSpec(b.public_key, keys.generate_psk(), ("192.0.2.0/28",), 15)
    wg.set_peers(name, [a2, b2])
    assert specs(wg, name) == {p.public_key: p for p in (a2, b2, c)}

    d = peer(("192.0.2.77/32",))  # takes c's allowed IP over in the same transaction
    wg.set_peers(name, [d], [c.public_key])
    assert specs(wg, name) == {p.public_key: p for p in (a2, b2, d)}
    wg.set_peers(name, [], [a2.public_key, b2.public_key, d.public_key])
    assert wg.observe(name).peers == {}
    wg.set_peers(name, [], [])  # nothing to do is not an error


def test_endpoints_are_set_and_a_kick_starts_a_handshake_now(env):
    """Remembered endpoints (issue 9, defect 5): both backends set v4 and v6 endpoints, and a
    kick sends a handshake initiation at once, leaving the peer configured as before."""
    ns = env.ns()
    wg, name = env.worker(ns), env.ifname()
    wg.call("create", name)
    wg.call("configure", name, keys.generate_private().reveal(), 51820)
    sh(ns, "ip", "link", "set", name, "up")
    a = WgPeerSpec(keys.keypair()[1], None, ("192.0.2.1/32",), None, "127.0.0.1:9")
    b = WgPeerSpec(keys.keypair()[1], None, ("192.0.2.2/32",), None, "[2001:db8::7]:51821")
    wg.set_peers(name, [a, b])
    seen = wg.observe(name).peers
    assert (seen[a.public_key].endpoint, seen[b.public_key].endpoint) == (a.endpoint, b.endpoint)
    assert seen[a.public_key].tx_bytes == 0  # setting an endpoint alone sends nothing
    plain = WgPeerSpec(a.public_key, None, a.allowed_ips, None)
    wg.call("kick", name, wire([plain]))
    deadline = time.monotonic() + 3
    while wg.observe(name).peers[a.public_key].tx_bytes == 0:
        assert time.monotonic() < deadline, "no handshake initiation within 3 s of the kick"
        time.sleep(0.05)
    after = wg.observe(name).peers[a.public_key]
    assert (after.keepalive, after.endpoint) == (None, a.endpoint)


def test_many_peers_are_merged_by_key(env):
    """Large devices come back over several genetlink messages; all peers, each exactly once."""
    wg, name = env.worker(env.ns()), env.ifname()
    wg.call("create", name)
    many = [
        peer(
            (f"10.{i // 250}.{i % 250}.1/32", f"2001:db8:{i:x}::/64"),
            psk=i % 2 == 0,
            keepalive=25 if i % 3 == 0 else None,
        )
        for i in range(1500)
    ]
    wg.set_peers(name, many)
    assert specs(wg, name) == {p.public_key: p for p in many}


def test_errors_name_the_device(env):
    wg, name = env.worker(env.ns()), env.ifname()
    for op, args in (
        ("configure", (name, keys.generate_private().reveal(), 51820)),
        ("set_peers", (name, [], [keys.keypair()[1]])),
    ):
        with pytest.raises(WorkerError) as exc:
            wg.call(op, *args)
        assert exc.value.backend_error and name in str(exc.value)
    wg.call("delete", name)  # absent = done
    with pytest.raises(WorkerError) as exc:
        wg.call("create", "../etc")
    assert exc.value.backend_error


def test_delete_leaves_nothing(env):
    ns = env.ns()
    wg, name = env.worker(ns), env.ifname()
    wg.call("create", name)
    wg.call("configure", name, keys.generate_private().reveal(), 51820)
    pid = pid_of(name)
    wg.call("delete", name)
    assert not link_exists(ns, name)
    assert wg.observe(name) is None and wg.call("list_devices") == []
    assert not os.path.exists(f"{naming.WG_SOCKET_DIR}/{name}.sock")
    assert not any(os.path.exists(f"{runfiles.runtime_dir()}/{name}.{x}") for x in ("pid", "log"))
    if env.backend == "userspace":
        assert pid is not None and not alive(pid)
    wg.call("delete", name)  # again: nothing to do


def test_only_marked_devices_are_listed_or_touched(env):
    ns = env.ns()
    wg, ours, foreign = env.worker(ns), env.ifname(), env.ifname()
    start_foreign(env, ns, foreign)
    wg.call("create", ours)
    assert wg.call("list_devices") == [ours]
    with pytest.raises(WorkerError) as exc:
        wg.call("delete", foreign)
    assert exc.value.backend_error and foreign in str(exc.value)
    with pytest.raises(WorkerError):
        wg.call("create", foreign)  # a same-named device that is not ours is an error
    wg.call("delete", ours)
    assert wg.call("list_devices") == []
    assert link_exists(ns, foreign)
    assert "wggw-managed" not in sh(ns, "ip", "link", "show", "dev", foreign).stdout
    if env.backend == "userspace":
        assert all(alive(p.pid) for p in env.foreign)
        assert os.path.exists(f"{naming.WG_SOCKET_DIR}/{foreign}.sock")


def test_secrets_never_on_a_command_line(env):
    ns = env.ns()
    wg, name = env.worker(ns), env.ifname()
    priv, psk = keys.generate_private(), keys.generate_psk()
    wg.call("create", name)
    wg.call("configure", name, priv.reveal(), 51820)
    wg.set_peers(name, [WgPeerSpec(keys.keypair()[1], psk, ("192.0.2.9/32",), None)])
    needles = [s.encode() for x in (priv, psk) for s in (x.reveal(), x.hex())]
    leaks = []
    for entry in os.listdir("/proc"):
        for part in ("cmdline", "environ") if entry.isdigit() else ():
            try:
                data = Path("/proc", entry, part).read_bytes()
            except OSError:
                continue
            leaks += [f"{entry}/{part}" for n in needles if n in data]
    assert not leaks


def test_live_session_survives_changes_to_other_peers(env):
    """A handshake over a veth between two namespaces; adding, changing and removing other
    peers must neither renew it nor interrupt traffic."""
    gw_ns, cl_ns = env.ns(), env.ns()
    sh(gw_ns, "ip", "link", "add", "vgw", "type", "veth", "peer", "name", "vcl", "netns", cl_ns)
    for ns, dev, addr in ((gw_ns, "vgw", "198.51.100.1/24"), (cl_ns, "vcl", "198.51.100.2/24")):
        sh(ns, "ip", "addr", "add", addr, "dev", dev)
        sh(ns, "ip", "link", "set", dev, "up")
    gw, cl = env.worker(gw_ns), env.worker(cl_ns)
    gw_if, cl_if = env.ifname(), env.ifname()
    gw_key, cl_key, psk = keys.generate_private(), keys.generate_private(), keys.generate_psk()
    cl_spec = WgPeerSpec(keys.public_of(cl_key), psk, ("192.0.2.2/32",), None)
    for w, ns, name, key, port, their, addr in (
        (gw, gw_ns, gw_if, gw_key, 51820, cl_spec, "192.0.2.1/24"),
        (
            cl,
            cl_ns,
            cl_if,
            cl_key,
            51821,
            WgPeerSpec(keys.public_of(gw_key), psk, ("192.0.2.1/32",), None),
            "192.0.2.2/24",
        ),
    ):
        w.call("create", name)
        w.call("configure", name, key.reveal(), port)
        w.set_peers(name, [their])
        sh(ns, "ip", "addr", "add", addr, "dev", name)
        sh(ns, "ip", "link", "set", name, "up")
    # The client side needs an endpoint to start from; wggw's specs have none (it is the server).
    sh(cl_ns, "wg", "set", cl_if, "peer", keys.public_of(gw_key), "endpoint", "198.51.100.1:51820")
    assert ping(cl_ns, "192.0.2.1", attempts=10)
    before = gw.observe(gw_if).peers[cl_spec.public_key]
    assert before.last_handshake > 0 and before.endpoint == "198.51.100.2:51821"

    others = [peer((f"192.0.2.{i}/32",), psk=True) for i in range(10, 13)]
    gw.set_peers(gw_if, others)
    gw.set_peers(
        gw_if,
        [WgPeerSpec(others[0].public_key, None, ("192.0.2.20/32",), 25)],
        [others[1].public_key],
    )
    gw.call("configure", gw_if, gw_key.reveal(), 51820)  # re-applying the same key and port
    assert ping(cl_ns, "192.0.2.1", attempts=3)
    after = gw.observe(gw_if)
    assert set(after.peers) == {cl_spec.public_key, others[0].public_key, others[2].public_key}
    kept = after.peers[cl_spec.public_key]
    assert kept.last_handshake == before.last_handshake
    assert kept.spec() == cl_spec and kept.rx_bytes > before.rx_bytes


def test_select_backend(userspace_env):
    ns = userspace_env.ns()
    wg = userspace_env.worker(ns)
    links_before = sh(ns, "ip", "-o", "link").stdout
    assert wg.call("select", "userspace", {}) == "userspace"
    auto = wg.call("select", "auto", {})
    assert auto in ("kernel", "userspace")
    with pytest.raises(WorkerError) as exc:
        wg.call("select", "bogus", {})
    assert exc.value.backend_error
    if auto == "userspace":
        with pytest.raises(WorkerError) as exc:
            wg.call("select", "auto", {"WGGW_WIREGUARD_GO": "/nonexistent/wireguard-go"})
        assert exc.value.kind == "BackendUnavailableError"
        assert "apt-get install wireguard-go" in str(exc.value)
    assert sh(ns, "ip", "-o", "link").stdout == links_before  # the kernel probe left nothing


def test_wireguard_go_that_fails_to_start_is_reported_and_cleaned(userspace_env):
    ns = userspace_env.ns()
    wg, name = userspace_env.worker(ns), userspace_env.ifname()
    with pytest.raises(WorkerError) as exc:
        wg.call("create_with", "/bin/false", name)
    assert exc.value.backend_error and name in str(exc.value) and "exit=1" in str(exc.value)
    assert not any(os.path.exists(f"{runfiles.runtime_dir()}/{name}.{x}") for x in ("pid", "log"))
    assert not link_exists(ns, name) and wg.call("list_devices") == []


# --- helpers of the contract tests ------------------------------------------------------------


def specs(wg: Worker, name: str) -> dict[str, WgPeerSpec]:
    return {k: p.spec() for k, p in wg.observe(name).peers.items()}


def ping(ns: str, addr: str, attempts: int) -> bool:
    """The first packet of a fresh tunnel may be spent on the handshake: retry, bounded."""
    for _ in range(attempts):
        if sh(ns, sys.executable, "-c", PING, addr, check=False).returncode == 0:
            return True
    return False


def start_foreign(env: Env, ns: str, name: str) -> None:
    """A WireGuard device in `ns` that wggw did not make (no alias, no pid file)."""
    if env.backend == "kernel":
        sh(ns, "ip", "link", "add", name, "type", "wireguard")
        return
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, "wireguard-go", name],
        start_new_session=True,
        env={**os.environ, "WG_PROCESS_FOREGROUND": "1"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env.foreign.append(proc)
    sock = f"{naming.WG_SOCKET_DIR}/{name}.sock"
    deadline = time.monotonic() + 5
    while not os.path.exists(sock) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert os.path.exists(sock), "foreign wireguard-go did not start"

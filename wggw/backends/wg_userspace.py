"""The userspace WireGuard backend: wireguard-go processes that wggw starts and stops by PID,
configured over their UAPI sockets (wg_uapi).

Each device is one detached wireguard-go process in the foreground mode, so it outlives
the wggw command that started it; its PID is kept in runfiles.runtime_dir()/<ifname>.pid and
its output in <ifname>.log there, capped (wglog). UAPI sockets live in one host-wide directory,
so every
call first checks that the link exists in the current netns (names must be unique host-wide).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Sequence

from wggw.backends import runfiles, wg_uapi, wglog
from wggw.backends.wireguard import (
    PeersRequest,
    WgBackend,
    check_name,
    delete_link,
    link_info,
    owned_links,
    set_alias,
)
from wggw.core import naming
from wggw.core.errors import BackendError
from wggw.core.keys import Secret
from wggw.core.wgtypes import WgDeviceState, WgPeerSpec

START_TIMEOUT = 5.0  # wireguard-go serves its socket within ~50 ms here
STOP_TIMEOUT = 3.0
POLL = 0.02
START_POLL = 0.002  # its socket appears within ~50 ms: a 20 ms step would add ~10 ms per start
TUN_KIND = "tun"  # what a wireguard-go link looks like to rtnetlink


def find_wireguard_go() -> str | None:
    """WGGW_WIREGUARD_GO if set (it must then be executable), else wireguard-go on PATH."""
    configured = os.environ.get("WGGW_WIREGUARD_GO")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("wireguard-go")


def pid_path(ifname: str) -> str:
    return str(runfiles.pid_file(ifname))


def log_path(ifname: str) -> str:
    return str(runfiles.log_file(ifname))


# --- processes ---------------------------------------------------------------------------


def read_pid(ifname: str) -> int | None:
    try:
        with open(pid_path(ifname)) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def is_device_process(pid: int, ifname: str) -> bool:
    """True if `pid` is a live (not zombie) wireguard-go serving `ifname`: a PID file may
    outlive its process, and the PID may since belong to something else."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    known = (
        "wireguard-go" in os.path.basename(argv[0])
        or argv[0] == os.environ.get("WGGW_WIREGUARD_GO")
        if argv
        else False
    )
    return state != "Z" and known and ifname in argv[1:]


def in_this_netns(pid: int) -> bool:
    try:
        theirs, ours = os.stat(f"/proc/{pid}/ns/net"), os.stat("/proc/self/ns/net")
    except OSError:
        return False
    return (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino)


def _gone(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child (tests, long-lived callers)
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _wait(predicate, timeout: float, poll: float = POLL) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)


def _serving(path: str) -> bool:
    """True if something accepts connections on the UAPI socket at `path`."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(path)
            return True
        except OSError:
            return False


def _write_pid(ifname: str, pid: int) -> None:
    # Plain os calls only: this also runs in the forked child, before exec (_child_setup).
    path = pid_path(ifname)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, f"{pid}\n".encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _child_setup(ifname: str):
    """The preexec_fn of wireguard-go: the child records its own PID (unchanged by exec) before
    exec, so the PID file exists before the link does. Were the parent to write it after Popen,
    a wggw killed in between would leave a running device no later apply or `down` could claim."""
    limit = wglog.limit_file_size()

    def setup() -> None:
        _write_pid(ifname, os.getpid())
        limit()

    return setup


def _log_tail(ifname: str) -> str:
    try:
        with open(log_path(ifname), errors="replace") as f:
            return " | ".join(f.read().strip().splitlines()[-3:])
    except OSError:
        return ""


def start_process(binary: str, ifname: str) -> int:
    """Start wireguard-go for `ifname` detached from us, record its PID, wait for its socket."""
    rundir = runfiles.runtime_dir()
    os.makedirs(rundir, mode=0o700, exist_ok=True)
    os.chmod(rundir, 0o700)
    sock = wg_uapi.socket_path(ifname)
    if os.path.exists(sock):
        if _serving(sock):
            raise BackendError(
                f"wireguard-go {ifname}: {sock} is served by another process "
                "(interface names must be unique on the host)"
            )
        os.unlink(sock)  # left by a killed process; wireguard-go would refuse to start
    # A minimal environment: WG_TUN_FD/WG_UAPI_FD from our caller must not leak in.
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "WG_PROCESS_FOREGROUND": "1",
        "LOG_LEVEL": "error",
    }
    log_fd = wglog.open_log(ifname)
    try:
        proc = subprocess.Popen(
            [binary, ifname],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            start_new_session=True,
            close_fds=True,
            preexec_fn=_child_setup(ifname),
        )
    except (OSError, subprocess.SubprocessError) as e:
        raise BackendError(f"wireguard-go {ifname}: cannot start {binary}: {e}") from e
    finally:
        os.close(log_fd)
    if (
        not _wait(lambda: proc.poll() is not None or _serving(sock), START_TIMEOUT, START_POLL)
        or proc.poll() is not None
    ):
        why = (
            f"(exit={proc.poll()}): {_log_tail(ifname)}"  # read before stop_process removes the log
        )
        stop_process(ifname)
        raise BackendError(
            f"wireguard-go {ifname}: did not come up within {START_TIMEOUT:g} s {why}"
        )
    return proc.pid


def stop_process(ifname: str) -> None:
    """SIGTERM the recorded wireguard-go (it then removes its link and socket), SIGKILL if it
    lingers, and remove what a killed process leaves behind. No PID file = nothing to stop."""
    pid = read_pid(ifname)
    if pid is not None and is_device_process(pid, ifname):
        for sig, timeout in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, STOP_TIMEOUT)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            except OSError as e:
                raise BackendError(f"wireguard-go {ifname}: cannot stop pid {pid}: {e}") from e
            if _wait(lambda: _gone(pid), timeout):
                break
        else:
            raise BackendError(f"wireguard-go {ifname}: pid {pid} survived SIGKILL")
    sock = wg_uapi.socket_path(ifname)
    if os.path.exists(sock) and not _serving(sock):
        os.unlink(sock)
    for path in runfiles.process_files(ifname):
        path.unlink(missing_ok=True)


def process_state(ifname: str) -> str:
    """ "none" (no pid file), "stale" (its process is gone), "here" or "elsewhere" (netns)."""
    pid = read_pid(ifname)
    if pid is None:
        return "none"
    if not is_device_process(pid, ifname):
        return "stale"
    return "here" if in_this_netns(pid) else "elsewhere"


def _here(ifname: str) -> bool:
    try:
        socket.if_nametoindex(ifname)
        return True
    except OSError:
        return False


class UserspaceBackend(WgBackend):
    kind = "userspace"

    def __init__(self, binary: str):
        self.binary = binary

    def list_devices(self) -> list[str]:
        names = {n for n in owned_links([TUN_KIND]) if os.path.exists(wg_uapi.socket_path(n))}
        # Also a device whose process we started but whose alias is not set yet (a crash
        # between the two steps), as long as it lives in this netns.
        rundir = runfiles.runtime_dir()
        for entry in os.listdir(rundir) if rundir.is_dir() else ():
            name = entry[: -len(".pid")] if entry.endswith(".pid") else ""
            if naming.valid_name(name) and process_state(name) == "here":
                names.add(name)
        return sorted(names)

    def observe(self, ifname: str, only: Iterable[str] | None = None) -> WgDeviceState | None:
        check_name(ifname)
        if not _here(ifname) or not os.path.exists(wg_uapi.socket_path(ifname)):
            return None
        wglog.rotate(ifname)  # every plan, apply and status keeps the log bounded
        return wg_uapi.UapiClient(ifname).get(only)

    def create(self, ifname: str) -> None:
        check_name(ifname)
        info, process = link_info(ifname), process_state(ifname)
        if process == "elsewhere":
            raise BackendError(
                f"wireguard-go {ifname}: already runs in another network namespace "
                "(interface names must be unique on the host)"
            )
        if info is not None and process != "here" and info != (TUN_KIND, naming.LINK_ALIAS):
            raise BackendError(
                f"wireguard-go {ifname}: a link of that name exists and is not wggw's"
            )
        if info is not None and process == "here" and info[1] == naming.LINK_ALIAS:
            return  # already there
        if info is None:
            stop_process(ifname)  # a process without its link is useless; clean and start afresh
            start_process(self.binary, ifname)
        try:
            set_alias(ifname)
        except BackendError:
            stop_process(ifname)  # do not leave an unmarked device that `down` cannot find
            raise

    def delete(self, ifname: str) -> None:
        check_name(ifname)
        info, process = link_info(ifname), process_state(ifname)
        if info is None and process == "elsewhere":
            return  # absent here; the same name in another netns is not ours to stop
        if info is not None and process != "here" and info[1] != naming.LINK_ALIAS:
            raise BackendError(
                f"wireguard-go {ifname}: not wggw's (no alias, no pid file); left alone"
            )
        if process != "elsewhere":
            stop_process(ifname)  # also cleans a stale pid file and socket
        if link_info(ifname) is not None:
            delete_link(ifname)  # marked but not started by us (e.g. pid file lost)

    def configure(self, ifname: str, private_key: Secret | None, listen_port: int) -> None:
        self._client(ifname).set(wg_uapi.device_lines(private_key, listen_port))

    def set_peers(self, ifname: str, upsert: Sequence[WgPeerSpec], remove: Sequence[str]) -> None:
        self.send_peers(self.prepare_peers(ifname, upsert, remove))

    def prepare_peers(
        self, ifname: str, upsert: Sequence[WgPeerSpec], remove: Sequence[str]
    ) -> PeersRequest:
        lines: list[str] = []
        for public_key in remove:
            lines += wg_uapi.remove_lines(public_key)
        for spec in upsert:
            lines += wg_uapi.peer_lines(spec)
        return PeersRequest(ifname, (wg_uapi.SetBody(lines), tuple(upsert)) if lines else None)

    def send_peers(self, request: PeersRequest) -> None:
        if request.payload is not None:
            body, upsert = request.payload
            # one request: one transaction under wireguard-go's lock
            self._client(request.ifname).send(body, expect=upsert)

    def _client(self, ifname: str) -> wg_uapi.UapiClient:
        check_name(ifname)
        if not _here(ifname):
            raise BackendError(f"wireguard-go {ifname}: no such device in this network namespace")
        return wg_uapi.UapiClient(ifname)

"""One agent per host (per runtime directory): an exclusive flock on `agent.lock` in
wggw's runtime dir, held for the agent's life. The kernel releases it when the process
dies, however it dies, so a crashed agent never blocks the next one. `wggw down` takes the
same lock while it tears down, so that no agent runs then (or starts) to rebuild the host."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from wggw.backends import runfiles
from wggw.core.errors import LockBusyError
from wggw.fsutil import private_umask


def lock_path() -> Path:
    return runfiles.runtime_dir() / "agent.lock"


class AgentLock:
    def __init__(self, role: str = "agent") -> None:
        self.path = lock_path()
        self.fd = -1
        self.role = role  # written after the pid: "agent", or "down" while down tears down

    def acquire(self) -> AgentLock:
        """Take the lock or raise LockBusyError naming the running agent's pid."""
        holder = self.try_acquire()
        if holder is not None:
            pid, role = holder_of(holder)
            if role == "down":
                raise LockBusyError(f"`wggw down` (pid {pid}) is tearing this host down")
            raise LockBusyError(
                f"another wggw agent is running (pid {pid}, lock "
                f"{self.path}); only one may run per host"
            )
        return self

    def try_acquire(self) -> str | None:
        """Take the lock and return None, or return what its holder wrote ("PID ROLE"; ''
        if nothing yet) and leave it be."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        for _ in range(5):  # the file may be unlinked by an exiting agent between open and lock
            with private_umask():
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = os.pread(fd, 32, 0).decode(errors="replace").strip()
                os.close(fd)
                return pid
            if _same_file(fd, self.path):
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()} {self.role}\n".encode(), 0)
                self.fd = fd
                return None
            os.close(fd)
        raise LockBusyError(f"could not take {self.path}: it keeps being replaced")

    def release(self) -> None:
        if self.fd >= 0:
            self.path.unlink(missing_ok=True)  # while still locked: no one else holds it
            os.close(self.fd)
            self.fd = -1


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def holder_of(text: str) -> tuple[str, str]:
    """(pid, role) from the lock's content; an agent of an older wggw wrote its pid alone."""
    parts = text.split()
    return (parts[0] if parts else "?", parts[1] if len(parts) > 1 else "agent")

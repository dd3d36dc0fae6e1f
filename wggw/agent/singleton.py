"""One agent per host (per runtime directory): an exclusive flock on `agent.lock` in
wggw's runtime dir, held for the agent's life. The kernel releases it when the process
dies, however it dies, so a crashed agent never blocks the next one."""

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
    def __init__(self) -> None:
        self.path = lock_path()
        self.fd = -1

    def acquire(self) -> AgentLock:
        """Take the lock or raise LockBusyError naming the running agent's pid."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        for _ in range(5):  # the file may be unlinked by an exiting agent between open and lock
            with private_umask():
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = os.pread(fd, 32, 0).decode(errors="replace").strip()
                os.close(fd)
                raise LockBusyError(
                    f"another wggw agent is running (pid {pid or '?'}, lock "
                    f"{self.path}); only one may run per host"
                ) from None
            if _same_file(fd, self.path):
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                self.fd = fd
                return self
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

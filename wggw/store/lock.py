"""The state lock: an exclusive flock with a bounded wait, reentrant within a process.

flock locks belong to an open file description, so a second open() of the same
file in the same process would wait for itself; a per-path depth counter lets
nested users (a command, then a transaction inside it) share one descriptor.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from wggw import fsutil
from wggw.core.errors import LockBusyError, ValidationError

DEFAULT_TIMEOUT = 30.0
_held: dict[str, list[int]] = {}  # path -> [fd, depth]
_guard = threading.Lock()


def default_timeout() -> float:
    text = os.environ.get("WGGW_LOCK_TIMEOUT")
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        raise ValidationError("WGGW_LOCK_TIMEOUT", f"{text!r} is not a number of seconds") from None
    if value < 0:
        raise ValidationError("WGGW_LOCK_TIMEOUT", "must not be negative")
    return value


@contextlib.contextmanager
def flock(path: Path, timeout: float | None = None) -> Iterator[None]:
    key = os.path.realpath(path)  # one entry per file, however it was named
    with _guard:
        entry = _held.get(key)
        if entry is not None:
            entry[1] += 1
    if entry is None:
        fd = _acquire(key, default_timeout() if timeout is None else timeout)
        with _guard:
            entry = _held[key] = [fd, 1]
    try:
        yield
    finally:
        with _guard:
            entry[1] -= 1
            last = entry[1] == 0
            if last:
                del _held[key]
        if last:
            os.close(entry[0])  # closing the descriptor releases the flock


def _acquire(path: str, timeout: float) -> int:
    with fsutil.private_umask():
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = _read_holder(fd)
                os.close(fd)
                raise LockBusyError(
                    f"state lock {path} is held by another wggw process{holder}; "
                    f"gave up after {timeout:g}s (WGGW_LOCK_TIMEOUT)"
                ) from None
            # jitter: many waiters should not wake in lockstep
            time.sleep(0.02 + random.random() * 0.05)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)  # for the "held by pid N" message
    return fd


def _read_holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""

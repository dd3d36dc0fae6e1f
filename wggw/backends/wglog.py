"""wireguard-go's log file, kept bounded (issue 9.4).

wireguard-go logs at level `error` to runtime_dir()/<ifname>.log (tmpfs: RAM). Some of its
errors repeat for as long as a condition lasts (a peer without endpoint that something keeps
trying to reach logs a line every 5 s), so the file gets a hard cap: the process runs with
RLIMIT_FSIZE = LOG_CAP, and the file is opened O_APPEND, so once it is full further lines are
dropped (Go ignores SIGXFSZ; the write fails, the daemon goes on). Whenever wggw looks at
the device (plan, apply, status) a log past half its cap is rotated: its content moves to
<ifname>.log.1 (replacing the previous one) and the log starts empty, so the newest lines
are kept and the two files never hold more than 2 x LOG_CAP.
"""

from __future__ import annotations

import os
import resource
import shutil

from wggw.backends import runfiles

LOG_CAP = 1 << 20  # bytes per file; at ~130 bytes a line, ~8,000 lines


def open_log(ifname: str) -> int:
    """A fresh, empty log for a new wireguard-go process (0600, append-only writes)."""
    return os.open(
        runfiles.log_file(ifname), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600
    )


def limit_file_size(cap: int = LOG_CAP):
    """A preexec_fn for the wireguard-go child: no file it writes grows past `cap`."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (cap, cap))

    return apply


def rotate(ifname: str, cap: int = LOG_CAP) -> bool:
    """Move a log past half of `cap` to <ifname>.log.1 and empty it; True if it did.
    wireguard-go writes with O_APPEND, so its next line lands at the start of the empty file."""
    path = runfiles.log_file(ifname)
    try:
        if path.stat().st_size < cap // 2:
            return False
        tmp = runfiles.tmp_of(runfiles.old_log_file(ifname))
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(path, "rb") as src, open(fd, "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.replace(tmp, runfiles.old_log_file(ifname))
        os.truncate(path, 0)
    except OSError:
        return False  # the log is a convenience: never fail a plan or a status over it
    return True

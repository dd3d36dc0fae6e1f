"""nftables backend: load wggw's table in one `nft -f` transaction, check it with the
kernel's own parser (`nft -c`), and observe it. Touches only table `inet wggw`.

The text goes to nft on stdin, never on a command line. pyroute2's nftables module is a
prototype, so nft itself (one process per transaction) is the reliable interface.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from wggw.backends import runfiles
from wggw.core import naming, nftcanon
from wggw.core.errors import BackendError, BackendUnavailableError
from wggw.core.nftables import TABLE
from wggw.core.plan import ObservedNft
from wggw.fsutil import atomic_write, make_private_dir, unlink_with_temps


def _nft() -> str:
    path = shutil.which("nft")
    if path is None:
        raise BackendUnavailableError("nft not found: install nftables (apt-get install nftables)")
    return path


def _run(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    try:
        with _input(stdin) as source:
            return subprocess.run(
                [_nft(), *args], stdin=source, capture_output=True, text=True, timeout=60
            )
    except (OSError, subprocess.SubprocessError) as e:  # cannot start, or hangs
        raise BackendError(f"nftables table {TABLE}: nft {' '.join(args)}: {e}") from None


def _input(text: str | None):
    """What nft reads as its standard input: `text` in an anonymous in-memory file, which nft
    reads at its own pace. Fed through a pipe, 1,000 tenants' table is written 512 bytes per
    turn of this process's interpreter lock: slow whenever another thread (the peers'
    request of a cold apply) wants it too."""
    if text is None:
        return open(os.devnull, "rb")
    source = os.fdopen(os.memfd_create("wggw-nft", os.MFD_CLOEXEC), "w+b")
    source.write(text.encode())
    source.seek(0)
    return source


LIST = ["-j", "list", "table", naming.NFT_FAMILY, naming.NFT_TABLE]


def start_listing() -> subprocess.Popen:
    """`nft -j list` of the table, started now and read by `record_loaded` later: nft reads
    the kernel at once, and formatting 1,000 tenants' table takes it as long as the load,
    time in which wggw applies routes and rules."""
    try:
        return subprocess.Popen(
            [_nft(), *LIST],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    except OSError as e:
        raise BackendError(f"nftables table {TABLE}: nft {' '.join(LIST)}: {e}") from None


def _finish(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.SubprocessError as e:  # hangs
        proc.kill()
        proc.communicate()
        raise BackendError(f"nftables table {TABLE}: nft {' '.join(LIST)}: {e}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _first_error(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if "Error" in ln] or stderr.splitlines() or ["failed"]
    return lines[0].strip()


def load(text: str, check_only: bool = False) -> None:
    """Apply (or with check_only, only parse and validate) the whole transaction."""
    res = _run(["-c", "-f", "-"] if check_only else ["-f", "-"], stdin=text)
    if res.returncode != 0:
        verb = "check" if check_only else "load"
        raise BackendError(f"nftables table {TABLE}: {verb} failed: {_first_error(res.stderr)}")


def _list(started: subprocess.Popen | None = None) -> list[dict] | None:
    """The table as nft's JSON objects, or None when it does not exist (`started`: from a
    listing already under way)."""
    res = _run(LIST) if started is None else _finish(started)
    if res.returncode != 0:
        if "No such file" in res.stderr or "does not exist" in res.stderr:
            return None
        raise BackendError(f"nftables table {TABLE}: list failed: {_first_error(res.stderr)}")
    return json.loads(res.stdout).get("nftables", [])


def observe() -> ObservedNft:
    """The table in full: its digest comment, every set/map element in canonical spelling,
    and whether everything else (set declarations, chains, rules, in order) is exactly what
    the kernel reported right after wggw loaded this digest's text (its record)."""
    objs = _list()
    if objs is None:
        return ObservedNft(False)
    parsed = nftcanon.parse(objs)
    record = _read_record()
    vouched = record == {"digest": parsed.digest, "body": parsed.body}
    return ObservedNft(True, parsed.digest, parsed.elements, vouched)


def _record_path() -> Path:
    return runfiles.nft_record(runfiles.netns_inode())  # one per network namespace


def _read_record() -> dict:
    try:
        return json.loads(_record_path().read_text())
    except (OSError, ValueError):
        return {}


def record_loaded(started: subprocess.Popen | None = None) -> ObservedNft:
    """Right after a load: remember the canonical body the kernel holds for this digest, so
    a later observation can tell a rule or chain changed in place from wggw's own
    (`started`: the listing `start_listing` began right after the load). Returns the table
    as that listing saw it: an observation made after the load, which the apply's own
    verify may take instead of listing 1,000 tenants' table again."""
    objs = _list(started)
    if objs is None:
        raise BackendError(f"nftables table {TABLE}: gone right after loading it")
    parsed = nftcanon.parse(objs)
    make_private_dir(runfiles.runtime_dir())
    atomic_write(_record_path(), json.dumps({"digest": parsed.digest, "body": parsed.body}))
    return ObservedNft(True, parsed.digest, parsed.elements, True)


def delete() -> None:
    load(f"table {TABLE} {{}}\ndelete table {TABLE}\n")
    unlink_with_temps(_record_path())

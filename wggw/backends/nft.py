"""nftables backend: load wggw's table in one `nft -f` transaction, check it with the
kernel's own parser (`nft -c`), and observe it. Touches only table `inet wggw`.

The text goes to nft on stdin, never on a command line. pyroute2's nftables module is a
prototype, so nft itself (one process per transaction) is the reliable interface.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter

from wggw.core import naming
from wggw.core.errors import BackendError, BackendUnavailableError
from wggw.core.nftables import TABLE
from wggw.core.plan import ObservedNft


def _nft() -> str:
    path = shutil.which("nft")
    if path is None:
        raise BackendUnavailableError("nft not found: install nftables (apt-get install nftables)")
    return path


def _run(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([_nft(), *args], input=stdin, capture_output=True, text=True,
                              timeout=60)
    except (OSError, subprocess.SubprocessError) as e:  # cannot start, or hangs
        raise BackendError(f"nftables table {TABLE}: nft {' '.join(args)}: {e}") from None


def _first_error(stderr: str) -> str:
    lines = [l for l in stderr.splitlines() if "Error" in l] or stderr.splitlines() or ["failed"]
    return lines[0].strip()


def load(text: str, check_only: bool = False) -> None:
    """Apply (or with check_only, only parse and validate) the whole transaction."""
    res = _run(["-c", "-f", "-"] if check_only else ["-f", "-"], stdin=text)
    if res.returncode != 0:
        verb = "check" if check_only else "load"
        raise BackendError(f"nftables table {TABLE}: {verb} failed: {_first_error(res.stderr)}")


def observe() -> ObservedNft:
    res = _run(["-j", "list", "table", naming.NFT_FAMILY, naming.NFT_TABLE])
    if res.returncode != 0:
        if "No such file" in res.stderr or "does not exist" in res.stderr:
            return ObservedNft(False)
        raise BackendError(f"nftables table {TABLE}: list failed: {_first_error(res.stderr)}")
    counts: Counter = Counter()
    digest = None
    for obj in json.loads(res.stdout).get("nftables", []):
        if "rule" in obj:
            rule = obj["rule"]
            counts[f"chain:{rule['chain']}"] += 1
            comment = rule.get("comment", "")
            if digest is None and comment.startswith("wggw "):
                digest = comment.split(" ", 1)[1]
        elif "chain" in obj:
            counts.setdefault(f"chain:{obj['chain']['name']}", 0)
        for kind in ("set", "map"):
            if kind in obj:
                counts[f"set:{obj[kind]['name']}"] = len(obj[kind].get("elem", []))
    return ObservedNft(True, digest, tuple(sorted(counts.items())))


def delete() -> None:
    load(f"table {TABLE} {{}}\ndelete table {TABLE}\n")

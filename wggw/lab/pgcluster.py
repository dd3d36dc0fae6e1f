"""A throwaway PostgreSQL 15 cluster for the tests and the benchmark (Debian's `postgresql`
package, never the system service): initdb and pg_ctl as the `postgres` user (initdb refuses
root) in a temp dir, listening only on a unix socket in that dir (reachable from every network
namespace: it is a file); a fresh database per use. Stopped and removed by whoever started it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "postgres"


def unusable() -> str | None:
    """Why a cluster cannot be started here, or None."""
    if os.geteuid() != 0:
        return "needs root (to run initdb as the postgres user)"
    if not (PG_BIN / "initdb").is_file():
        return f"{PG_BIN}/initdb missing: scripts/install-deps installs postgresql"
    return None


class Cluster:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="wggw-pg-"))
        self.data = self.root / "data"
        self.sock = self.root  # the socket lives beside the data dir
        shutil.chown(self.root, PG_USER, PG_USER)
        self.running = False

    def _as_pg(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["runuser", "-u", PG_USER, "--", *argv],
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self) -> None:
        if not self.data.exists():
            self._as_pg(
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                PG_USER,
                "--no-sync",
            )
        self._as_pg(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "30",
            "-l", str(self.root / "log"),
            "-o", f"-k {self.sock} -c listen_addresses='' -c fsync=off",
            "start",
        )  # fmt: skip
        self.running = True

    def stop(self) -> None:
        if self.running:
            self._as_pg(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "30",
                        "-m", "fast", "stop")  # fmt: skip
            self.running = False

    def remove(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql:///{dbname}?host={self.sock}&user={PG_USER}"

    def createdb(self) -> str:
        """A fresh, empty database; its URL."""
        name = f"wggw_{uuid.uuid4().hex[:12]}"
        self.psql("postgres", f"CREATE DATABASE {name}")
        return self.url(name)

    def psql(self, dbname: str, sql: str) -> str:
        out = subprocess.run(
            [str(PG_BIN / "psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", str(self.sock),
             "-U", PG_USER, "-d", dbname, "-c", sql],
            check=True, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return out.stdout

    def dump(self, url: str) -> str:
        """pg_dump of the database at `url` (as an attacker with a backup would read it)."""
        dbname = url.split("///", 1)[1].split("?", 1)[0]
        out = subprocess.run(
            [str(PG_BIN / "pg_dump"), "-h", str(self.sock), "-U", PG_USER, dbname],
            check=True, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        # \restrict lines carry a random token per run: drop them so dumps compare
        return "".join(
            line
            for line in out.stdout.splitlines(True)
            if not line.startswith("\\restrict") and not line.startswith("\\unrestrict")
        )

"""The agent's PostgreSQL LISTEN: a dedicated connection that wakes the event loop when a
commit anywhere NOTIFYs a new store generation (store/postgres.py bumps and notifies in the
commit), and the store's up/down state with its reconnect back-off.

The connection's socket sits in the agent's one `select()`; when it is readable the pending
notifications are read without blocking (libpq's consume_input + notifies). A broken
connection (server stopped, network cut) marks the store down; reconnects follow a capped
exponential back-off with full jitter, so that a fleet of agents does not hammer a database
that is coming back all at the same instant. Notifications sent while the connection was
away are lost by design: the caller resyncs fully after every reconnect.

Never used through a transaction-mode connection pooler (it hands the session to others
between transactions, and the LISTEN with it): the README says so.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable

import psycopg
import psycopg.conninfo

from wggw.core.errors import WggwError
from wggw.store import pgsql

BASE = 0.2  # seconds: the first retry after a lost connection
CAP = 10.0  # the longest pause between two attempts
CONNECT_TIMEOUT = "2"  # seconds an attempt may block the agent's loop (unless the URL says)


def backoff_delay(failures: int, rng: random.Random | None = None) -> float:
    """The pause before attempt `failures` + 1: min(CAP, BASE * 2**(failures-1)), full
    jitter down to half of it (never 0: a refused connect must not spin)."""
    if failures <= 0:
        return 0.0
    ceiling = min(CAP, BASE * 2 ** (failures - 1))
    return ceiling * (0.5 + 0.5 * (rng or random).random())


class Listener:
    """LISTEN wggw_generation on its own connection; reconnects when asked (`connect`)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: pgsql.Conn | None = None
        self.failures = 0  # connection attempts failed since the last success
        self.last_error: str | None = None
        self.before_close: Callable[[], None] | None = None  # the loop unregisters the socket

    @property
    def up(self) -> bool:
        return self.conn is not None

    def fileno(self) -> int:
        if self.conn is None:
            raise ValueError("not connected")
        return self.conn.pgconn.socket

    def connect(self) -> bool:
        """One attempt; True when listening again."""
        try:
            conn = pgsql.connect(_short(self.url))
            try:
                conn.execute(f"LISTEN {pgsql.NOTIFY_CHANNEL}")
            except psycopg.Error:
                conn.close()
                raise
        except (WggwError, psycopg.Error) as e:
            self.failures += 1
            self.last_error = str(e).splitlines()[0] if str(e) else type(e).__name__
            return False
        self.conn, self.failures, self.last_error = conn, 0, None
        return True

    def read(self) -> list[int] | None:
        """The generations notified since the last read ([] when the wake-up carried none);
        None when the connection broke (it is closed: reconnect)."""
        if self.conn is None:
            return None
        pg = self.conn.pgconn
        try:
            pg.consume_input()
            out = []
            while (n := pg.notifies()) is not None:
                with contextlib.suppress(ValueError):
                    out.append(int(n.extra.decode()))
        except psycopg.Error as e:
            self.last_error = str(e).splitlines()[0] if str(e) else type(e).__name__
            self.close()
            return None
        if pg.status != psycopg.pq.ConnStatus.OK:  # EOF read without an error
            self.last_error = "the server closed the connection"
            self.close()
            return None
        return out

    def close(self) -> None:
        if self.conn is not None:
            if self.before_close is not None:
                self.before_close()
            with contextlib.suppress(Exception):
                self.conn.close()
        self.conn = None


def _short(url: str) -> str:
    """`url` with a short connect timeout: an unreachable host (no RST, a cut network) must
    not stall the loop for the store's default 10 s at every attempt."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    if "connect_timeout" in info:
        return url
    return psycopg.conninfo.make_conninfo(url, connect_timeout=CONNECT_TIMEOUT)

"""One gateway's lock on the PostgreSQL store (what a fleet agent's round holds): it excludes
only another holder of the same gateway's lock, never the command lock of operators or
another gateway's agent."""

from __future__ import annotations

import pytest

from wggw.core.errors import LockBusyError
from wggw.ops.state import open_existing


@pytest.fixture
def on_pg(pg_url: str, key_file, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WGGW_DB", pg_url)


def test_gateway_lock_excludes_only_the_same_gateway(on_pg, gw, state_dir) -> None:
    with open_existing(state_dir) as agent, open_existing(state_dir) as other:
        with agent.gateway_locked("gw1", timeout=0):
            with pytest.raises(LockBusyError, match="gateway gw1's lock"):
                with other.gateway_locked("gw1", timeout=0.2):
                    pass
            with other.gateway_locked("gw2", timeout=0):  # another gateway's agent
                pass
            with other.locked(timeout=0):  # an operator's command
                pass
            with agent.transaction() as tx:  # the agent's own writes take the command lock
                tx.set_meta("probe", "1")
        with other.gateway_locked("gw1", timeout=0):  # released with the context
            pass

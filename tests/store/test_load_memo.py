"""The PostgreSQL store's load reuses the peers whose rows did not change since its last load
(an agent reloads the whole store on every NOTIFY): changed rows are decoded afresh, removed
peers are gone, and what comes back equals a fresh store's load."""

from __future__ import annotations

import pytest

from wggw.ops import objects
from wggw.ops.state import open_existing


@pytest.fixture
def on_pg(pg_url: str, key_file, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WGGW_DB", pg_url)


def test_load_decodes_only_changed_peers(on_pg, gw, state_dir) -> None:
    for i in range(3):
        gw("peer", "add", f"acme/p{i}")
    with open_existing(state_dir) as store:
        first = {p.name: p for p in store.load().peers}
        objects.add_peer(store, "acme/p3")
        objects.remove_peer(store, "acme/p0")
        second = {p.name: p for p in store.load().peers}
        assert second["p1"] is first["p1"] and second["p2"] is first["p2"]  # not decoded again
        assert set(second) == {"p1", "p2", "p3"}
        assert second["p3"].private_key is not None  # a new row: decoded and unsealed
    with open_existing(state_dir) as fresh:  # no memo: the same state
        assert fresh.load().peers == tuple(sorted(second.values(), key=lambda p: p.name))


def test_the_memo_holds_only_the_last_loads_rows(on_pg, gw, state_dir) -> None:
    gw("peer", "add", "acme/a")
    with open_existing(state_dir) as store:
        store.load()
        objects.remove_peer(store, "acme/a")
        store.load()
        assert store._peer_memo == {}

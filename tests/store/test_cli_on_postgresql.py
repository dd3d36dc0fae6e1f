"""The CLI tier's tests (tests/test_cli.py, test_cli_bulk.py) again, on the PostgreSQL store:
the same commands must give the same output and errors whichever store is behind them. Tests
that read SQLite's own files or count its loads stay with SQLite; `dump` (their "nothing
was changed" check) reads PostgreSQL here."""

from __future__ import annotations

import pytest
import test_cli
import test_cli_bulk

from wggw.ops.state import open_existing

SQLITE_ONLY = {
    "test_state_dir_from_environment",  # the files of the state dir
    "test_bulk_add_and_import_load_the_state_once",  # counts SqliteStore's loads
}


@pytest.fixture(autouse=True)
def _on_postgresql(key_file, pg_url, pg_cluster, monkeypatch):
    monkeypatch.setenv("WGGW_DB", pg_url)

    def dump(state_dir) -> list[str]:
        return pg_cluster.dump(pg_url).splitlines()

    def secrets_of(state_dir) -> list[str]:
        with open_existing(state_dir) as store:
            state = store.load()
        out = [i.private_key.reveal() for i in state.interfaces]
        for p in state.peers:
            out += [s.reveal() for s in (p.private_key, p.psk) if s is not None]
        return out

    for module in (test_cli, test_cli_bulk):
        monkeypatch.setattr(module, "dump", dump, raising=False)
    monkeypatch.setattr(test_cli, "_secrets_of", secrets_of)


def _tests(module) -> dict:
    return {
        f"{name}_pg": fn
        for name, fn in vars(module).items()
        if name.startswith("test_") and callable(fn) and name not in SQLITE_ONLY
    }


globals().update(_tests(test_cli))
globals().update(_tests(test_cli_bulk))

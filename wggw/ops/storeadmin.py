"""The store's own administration: `store migrate` (SQLite -> an empty PostgreSQL database)
and `store rekey` (a fresh key for the secrets at rest), with the key file of WGGW_KEY_FILE."""

from __future__ import annotations

from pathlib import Path

from wggw.core.errors import ValidationError
from wggw.store import pgcopy, sealed, select, sqlite
from wggw.store.rekey import pending_path, rekey
from wggw.store.sqlite import Store


def _key_path(why: str) -> Path:
    path = sealed.key_file_path()
    if path is None:
        raise ValidationError(sealed.KEY_FILE_ENV, f"not set; {why}")
    return path


def migrate_to(state_dir: Path, url: str) -> dict:
    """Copy the SQLite store in `state_dir` into the empty database at `url` and verify it.
    Secrets arrive sealed with WGGW_KEY_FILE's key (made when the file does not exist)."""
    if select.db_url(url) is None:
        raise ValidationError("to", "a postgresql:// URL is needed")
    key_path = _key_path("the PostgreSQL store keeps secrets encrypted (a missing file is made)")
    source = sqlite.SqliteStore(Path(state_dir), check_key=False)
    with source:
        stored = source.get_meta(sealed.META_KEY_ID)
        if stored is not None or key_path.exists():
            cipher = sealed.load_key_file(key_path)
        else:
            cipher = sealed.generate(key_path)
        source.cipher = cipher if stored is not None else None
        sealed.check(stored, source.cipher, str(source.path))
        with source.locked():
            return pgcopy.copy_to_empty(source, url, cipher)


def rekey_store(state_dir: Path, db: str | None) -> dict:
    """Re-seal every secret with a new key, written to WGGW_KEY_FILE after the commit. A plain
    SQLite store is encrypted when WGGW_KEY_FILE names a file that does not exist yet."""
    key_path = _key_path("it names the key file to rotate (or to create for a plain store)")
    if pending_path(key_path).exists():
        raise ValidationError(
            sealed.KEY_FILE_ENV,
            f"{pending_path(key_path)} exists: an earlier rekey did not finish; if the store's "
            "secrets open with it, move it over the key file, else delete it",
        )
    cipher = sealed.load_key_file(key_path) if key_path.exists() else None
    url = select.db_url(db)
    store: Store
    if url is not None:
        from wggw.store.postgres import PgStore

        store = PgStore(url, state_dir, cipher=cipher)
    else:
        store = sqlite.SqliteStore(Path(state_dir), cipher=cipher, check_key=False)
        stored = store.get_meta(sealed.META_KEY_ID)
        if stored is None and cipher is not None:
            store.close()
            raise ValidationError(
                sealed.KEY_FILE_ENV,
                f"the store's secrets are not encrypted yet; to encrypt them, point "
                f"{sealed.KEY_FILE_ENV} at a file that does not exist yet",
            )
        sealed.check(stored, cipher, str(state_dir))
    with store:
        return rekey(store, key_path)

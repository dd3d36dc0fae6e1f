"""`wggw store rekey`: every private key and PSK re-sealed with a fresh key in one transaction,
and the new key file put in place atomically only after that commit.

Order matters: the new key goes to `<key file>.new` (0600) first, the transaction commits,
then the rename. A crash before the commit leaves the old key valid (the .new file is
stale); a crash after it leaves the new key in `.new`, which the error at the next open
names. A plain store (SQLite) is encrypted the same way, from a key file not yet there.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from wggw.core.errors import ValidationError
from wggw.store import sealed
from wggw.store.sqlite import Store


def pending_path(key_path: Path) -> Path:
    return key_path.with_name(key_path.name + ".new")


def rekey(store: Store, key_path: Path) -> dict:
    """Re-seal all secrets of `store` (opened with its current cipher, or None when plain)."""
    old = store.cipher
    new = sealed.new_key()
    pending = pending_path(key_path)
    sealed.write_key_file(pending, new)
    count = 0
    try:
        with store.transaction() as tx:
            state = tx.load()  # opened with the old key
            store.cipher = new
            for iface in state.interfaces:
                tx.update_interface(iface)
            for peer in state.peers:
                if peer.private_key or peer.psk or (peer.retiring and peer.retiring.psk):
                    tx.update_peer(peer)
                    count += 1
            tx.set_meta(sealed.META_KEY_ID, new.key_id)
            tx.record_event(
                "store.rekey",
                "store",
                {"old_key_id": old.key_id if old else None, "new_key_id": new.key_id},
            )
    except BaseException:
        store.cipher = old
        with contextlib.suppress(FileNotFoundError):
            pending.unlink()
        raise
    try:
        os.replace(pending, key_path)
    except OSError as e:
        raise ValidationError(
            sealed.KEY_FILE_ENV,
            f"secrets are re-sealed with the key in {pending}, but moving it to {key_path} "
            f"failed ({e.strerror}): move it by hand",
        ) from None
    new.path = key_path
    return {
        "old_key_id": old.key_id if old else None,
        "new_key_id": new.key_id,
        "interfaces": len(state.interfaces),
        "peers": count,
        "key_file": str(key_path),
    }

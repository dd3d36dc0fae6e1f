"""Secrets at rest: private keys and PSKs sealed (pynacl SecretBox) in the store's rows with a
key from a key file (WGGW_KEY_FILE), so a dump, a backup or a replica of the database leaks no
WireGuard key.

A sealed value is text, `sb1:` + base64(nonce + ciphertext), in the same TEXT column a plain
key would use. The store's meta row `secrets_key_id` names the key (a keyed hash, not the
key): a store with it holds only sealed secrets, one without it only plain ones, so a wrong
or missing key file is one clear error at open, not a garbled key sent to a device.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wggw import fsutil
from wggw.core.errors import StoreError, ValidationError

KEY_SIZE = 32  # nacl.secret.SecretBox.KEY_SIZE; pynacl is imported only where a key is used
KEY_FILE_ENV = "WGGW_KEY_FILE"
META_KEY_ID = "secrets_key_id"
PREFIX = "sb1:"
# The columns that hold secrets, per table; everything else is plain data.
SECRET_COLUMNS: dict[str, tuple[str, ...]] = {
    "interfaces": ("private_key",),
    "peers": ("private_key", "psk", "retiring_psk"),
}


class Cipher:
    """One SecretBox key. `key_id` identifies it without revealing it."""

    __slots__ = ("_box", "_key", "key_id", "path")

    def __init__(self, key: bytes, path: Path | None = None):
        import nacl.secret

        self._key = key
        self._box = nacl.secret.SecretBox(key)
        self.key_id = hashlib.blake2b(key, digest_size=8, person=b"wggw-key-id").hexdigest()
        self.path = path

    def __repr__(self) -> str:
        return f"Cipher(key_id={self.key_id})"

    def seal(self, text: str) -> str:
        return PREFIX + base64.b64encode(bytes(self._box.encrypt(text.encode()))).decode()

    def open(self, value: str) -> str:
        if not value.startswith(PREFIX):
            raise StoreError("a stored secret is not sealed although the store is encrypted")
        import nacl.exceptions

        try:
            return self._box.decrypt(base64.b64decode(value[len(PREFIX) :])).decode()
        except (nacl.exceptions.CryptoError, binascii.Error, ValueError):
            raise StoreError(
                f"a stored secret does not open with key {self.key_id}; restore from a backup"
            ) from None

    def seal_row(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        for col in SECRET_COLUMNS.get(table, ()):
            if row.get(col) is not None:
                row[col] = self.seal(row[col])
        return row

    def open_row(self, table: str, row: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(row)
        for col in SECRET_COLUMNS.get(table, ()):
            if out.get(col) is not None:
                out[col] = self.open(out[col])
        return out


def key_file_path(env: Mapping[str, str] | None = None) -> Path | None:
    text = (os.environ if env is None else env).get(KEY_FILE_ENV)
    return Path(text) if text else None


def load_key_file(path: Path) -> Cipher:
    """The key in `path` (base64 of 32 bytes); refused when others may read the file."""
    try:
        st = path.stat()
        text = path.read_text().strip()
    except FileNotFoundError:
        raise ValidationError(KEY_FILE_ENV, f"{path} does not exist") from None
    except OSError as e:
        raise ValidationError(KEY_FILE_ENV, f"cannot read {path}: {e.strerror}") from None
    if st.st_mode & 0o077:
        raise ValidationError(
            KEY_FILE_ENV,
            f"{path} is readable by other users (mode {oct(stat.S_IMODE(st.st_mode))}); "
            "chmod 0600 it",
        )
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_SIZE:
        raise ValidationError(KEY_FILE_ENV, f"{path} does not hold a base64 32-byte key")
    return Cipher(key, path)


def new_key() -> Cipher:
    return Cipher(secrets.token_bytes(KEY_SIZE))


def write_key_file(path: Path, cipher: Cipher) -> None:
    """The key as base64, 0600 via temp file + rename (never half written)."""
    try:
        fsutil.atomic_write(path, base64.b64encode(cipher._key).decode() + "\n")
    except OSError as e:
        raise ValidationError(KEY_FILE_ENV, f"cannot write {path}: {e.strerror}") from None
    cipher.path = path


def generate(path: Path) -> Cipher:
    """A fresh key written to `path` (which must not exist yet)."""
    if path.exists():
        raise ValidationError(KEY_FILE_ENV, f"{path} exists already")
    cipher = new_key()
    write_key_file(path, cipher)
    return cipher


def cipher_from_env(create: bool = False) -> Cipher | None:
    """The key of WGGW_KEY_FILE; with `create` (a new store), a missing file is made first."""
    path = key_file_path()
    if path is None:
        return None
    if create and not path.exists():
        return generate(path)
    return load_key_file(path)


def check(stored_id: str | None, cipher: Cipher | None, where: str) -> None:
    """The key file given must be the one the store's secrets are sealed with."""
    if stored_id is None and cipher is not None:
        raise ValidationError(
            KEY_FILE_ENV,
            f"the secrets of {where} are not encrypted; unset {KEY_FILE_ENV}, or encrypt them "
            f"with `wggw store rekey` and {KEY_FILE_ENV} naming a file that does not exist yet",
        )
    if stored_id is not None and cipher is None:
        raise ValidationError(
            KEY_FILE_ENV,
            f"the secrets of {where} are encrypted (key {stored_id}); set {KEY_FILE_ENV} "
            "to its key file",
        )
    if stored_id is not None and cipher is not None and stored_id != cipher.key_id:
        pending = cipher.path and cipher.path.with_name(cipher.path.name + ".new")
        hint = (
            f"; an interrupted `store rekey` left the new key in {pending}"
            if pending and pending.exists()
            else ""
        )
        raise ValidationError(
            KEY_FILE_ENV,
            f"{cipher.path} holds key {cipher.key_id}, but the secrets of {where} are sealed "
            f"with key {stored_id}{hint}",
        )

"""WireGuard key material (X25519 via pynacl) and a secret type that never prints itself."""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets

# At the top, not in the functions: a cold apply checks 10,000 stored keys, and an import
# statement in the check cost a third of it (core/errors.py imports nothing of wggw's).
from wggw.core.errors import StoreError, ValidationError

KEY_LEN = 32


class Secret:
    """A private key or PSK (base64). `repr`/`str` are masked so secrets cannot leak
    through logs, tracebacks or f-strings; `.reveal()` is the one explicit way out."""

    __slots__ = ("_b64", "_checked")

    def __init__(self, b64: str):
        self._b64 = parse_key(b64, "key")
        self._checked = True

    @classmethod
    def _trusted(cls, b64: str) -> Secret:
        """A key read back from wggw's own store or a device, validated when it was written:
        skip the check now (a store load builds ~20,000 of these) and run it on first use,
        so a damaged store is still reported (StoreError) rather than sent to a device."""
        secret = cls.__new__(cls)
        secret._b64, secret._checked = b64, False
        return secret

    def reveal(self) -> str:
        if not self._checked:
            self._check()
        return self._b64

    def _check(self) -> None:
        try:
            normalised = parse_key(self._b64, "key")
        except ValidationError as e:
            raise StoreError(
                f"a stored key is damaged ({e.problem}); restore the store from a backup"
            ) from None
        if normalised != self._b64:
            raise StoreError(
                "a stored key is not in canonical base64; restore the store from a backup"
            )
        self._checked = True

    def hex(self) -> str:
        return binascii.a2b_base64(self.reveal()).hex()  # checked by reveal() already

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        # Unchecked values compare as stored: a damaged key differs from any good one, so the
        # planner schedules it and reveal() reports the damage before it reaches a device.
        # Bytes: compare_digest refuses non-ASCII str, which a damaged store could hold.
        return isinstance(other, Secret) and secrets.compare_digest(
            self._b64.encode(), other._b64.encode()
        )

    def __hash__(self) -> int:
        return hash(("secret", self._b64))


def parse_key(value: str, field: str = "key") -> str:
    """Validate a base64 WireGuard key (32 bytes) and return it normalised."""
    try:
        raw = binascii.a2b_base64(value.strip().encode("ascii"), strict_mode=True)
    except (binascii.Error, ValueError):  # also UnicodeEncodeError
        raise ValidationError(field, "not valid base64") from None
    if len(raw) != KEY_LEN:
        raise ValidationError(field, f"must decode to {KEY_LEN} bytes, got {len(raw)}")
    return base64.b64encode(raw).decode()


def clamp(b64: str) -> str:
    """A private key as WireGuard stores it: X25519-clamped (RFC 7748: the 3 low bits of the
    first byte cleared, the top bit of the last cleared and the one below it set), as `wg genkey`
    makes it. The public key does not change. The kernel keeps the clamped copy and treats any
    other spelling as a new key, which expires every session of the device."""
    if _clamped_text(b64):
        return b64  # every key made since keys were clamped: no decoding on a store load
    try:
        raw = bytearray(base64.b64decode(b64, validate=True))
    except (binascii.Error, ValueError):
        return b64
    if len(raw) != KEY_LEN or base64.b64encode(raw).decode() != b64:
        return b64  # damaged or not canonical: left for Secret._check to report
    raw[0] &= 248
    raw[31] = (raw[31] & 127) | 64
    return base64.b64encode(raw).decode()


_B64 = {
    c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
}


def _clamped_text(b64: str) -> bool:
    """Clamped, read from the base64 text: the first byte's low 3 bits are the lowest bit of
    character 0 and the top 2 of character 1; the last byte's top 2 bits are bits 3-2 of
    character 41."""
    try:
        return (
            len(b64) == 44
            and b64[43] == "="
            and not _B64[b64[0]] & 0x01
            and not _B64[b64[1]] & 0x30
            and _B64[b64[41]] & 0x0C == 0x04
        )
    except KeyError:
        return False


def private_key(value: str, field: str = "private-key") -> Secret:
    """A private key given by a user or read from a file: validated, then clamped."""
    return Secret(clamp(parse_key(value, field)))


def clamped(private: Secret) -> Secret:
    """`private` as WireGuard stores it (the same object if it already is)."""
    b64 = private.reveal()
    fixed = clamp(b64)
    return private if fixed == b64 else Secret(fixed)


def generate_private() -> Secret:
    from nacl.public import PrivateKey  # pynacl costs ~10 ms to import: only where keys are made

    return Secret(clamp(base64.b64encode(bytes(PrivateKey.generate())).decode()))


def public_of(private: Secret) -> str:
    from nacl.public import PrivateKey

    raw = base64.b64decode(private.reveal())
    return base64.b64encode(bytes(PrivateKey(raw).public_key)).decode()


def generate_psk() -> Secret:
    return Secret(base64.b64encode(secrets.token_bytes(KEY_LEN)).decode())


def keypair() -> tuple[Secret, str]:
    priv = generate_private()
    return priv, public_of(priv)


def key_hex(b64: str) -> str:
    """UAPI speaks hex; everything else speaks base64."""
    return binascii.a2b_base64(b64).hex()  # base64.b64decode's checks take longer than this


def key_from_hex(h: str) -> str:
    return base64.b64encode(bytes.fromhex(h)).decode()


def fingerprint(public_key: str) -> str:
    """A short, non-secret identifier of a public key for audit records."""
    return hashlib.sha256(base64.b64decode(public_key)).hexdigest()[:16]

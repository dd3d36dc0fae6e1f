"""WireGuard key material (X25519 via pynacl) and a secret type that never prints itself."""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets

from nacl.public import PrivateKey

KEY_LEN = 32


class Secret:
    """A private key or PSK (base64). `repr`/`str` are masked so secrets cannot leak
    through logs, tracebacks or f-strings; `.reveal()` is the one explicit way out."""

    __slots__ = ("_b64",)

    def __init__(self, b64: str):
        self._b64 = parse_key(b64, "key")

    def reveal(self) -> str:
        return self._b64

    def hex(self) -> str:
        return base64.b64decode(self._b64).hex()

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and secrets.compare_digest(self._b64, other._b64)

    def __hash__(self) -> int:
        return hash(("secret", self._b64))


def parse_key(value: str, field: str = "key") -> str:
    """Validate a base64 WireGuard key (32 bytes) and return it normalised."""
    from .errors import ValidationError

    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(field, "not valid base64") from None
    if len(raw) != KEY_LEN:
        raise ValidationError(field, f"must decode to {KEY_LEN} bytes, got {len(raw)}")
    return base64.b64encode(raw).decode()


def generate_private() -> Secret:
    return Secret(base64.b64encode(bytes(PrivateKey.generate())).decode())


def public_of(private: Secret) -> str:
    raw = base64.b64decode(private.reveal())
    return base64.b64encode(bytes(PrivateKey(raw).public_key)).decode()


def generate_psk() -> Secret:
    return Secret(base64.b64encode(secrets.token_bytes(KEY_LEN)).decode())


def keypair() -> tuple[Secret, str]:
    priv = generate_private()
    return priv, public_of(priv)


def key_hex(b64: str) -> str:
    """UAPI speaks hex; everything else speaks base64."""
    return base64.b64decode(b64).hex()


def key_from_hex(h: str) -> str:
    return base64.b64encode(bytes.fromhex(h)).decode()


def fingerprint(public_key: str) -> str:
    """A short, non-secret identifier of a public key for audit records."""
    return hashlib.sha256(base64.b64decode(public_key)).hexdigest()[:16]

"""The CLI's text output that needs no typer: one-line errors, `key: value` views and the
peer view. Shared by the typer commands and by the quick path (cli/quick.py), which must
print exactly what they print."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wggw.core.timefmt import iso

if TYPE_CHECKING:
    from wggw.core.model import Peer


def one_line(text: str, limit: int = 500) -> str:
    """Control characters (newlines too) escaped: an error is always one line on stderr,
    and a readable one (a pasted megabyte is cut)."""
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text) - limit} more characters)"
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def view_lines(view: dict, fmt: Callable[[str, Any], Any] | None = None) -> list[str]:
    """Aligned `key: value` lines (lists joined, None shown as '-'); `fmt(key, value)` may
    rewrite a value for the text form."""
    width = max(map(len, view)) + 2
    out = []
    for key, value in view.items():
        value = fmt(key, value) if fmt else value
        if isinstance(value, list):
            value = ", ".join(map(str, value))
        out.append(f"{key + ':':{width}} {'-' if value in (None, '') else value}")
    return out


def strs(values) -> list[str]:
    return [str(v) for v in values]


def peer_json(p: Peer) -> dict:
    """Never the private key or PSK."""
    r = p.retiring
    return {
        "name": p.name,
        "tenant": p.tenant,
        "public_key": p.public_key,
        "addresses": strs(p.addresses),
        "key_created_at": iso(p.key_created_at),
        "expires_at": iso(p.expires_at),
        "keepalive": p.keepalive,
        "dns": strs(p.dns),
        "has_private_key": p.private_key is not None,
        "retiring": None
        if r is None
        else {
            "public_key": r.public_key,
            "addresses": strs(r.addresses),
            "retire_at": iso(r.retire_at),
        },
    }


def peer_text(key: str, value):
    """Text form of the nested fields of a peer view."""
    if key == "private key":
        return "held by wggw (peer config shows it)" if value else "kept by the client only"
    if key == "retiring" and value is not None:
        return f"{value['public_key']} ({', '.join(value['addresses'])}) until {value['retire_at']}"
    if key == "rotations":
        return (
            "; ".join(
                f"{r['at']} {r['kind']} {r.get('old', '')}->{r.get('new', r.get('key', ''))}"
                for r in value
            )
            or None
        )
    return value


def peer_lines(view: dict) -> list[str]:
    """One peer as text, worded for people (`private key: held by wggw`)."""
    renamed = {("private key" if k == "has_private_key" else k): v for k, v in view.items()}
    return view_lines(renamed, peer_text)

"""Text wggw hands to people and tools: wg-quick configs from the Jinja2 templates in
`templates/` (installed as `wggw.templates`) and QR codes of them.

Secrets are revealed here, at the last step, into the rendered text only.
"""

from __future__ import annotations

import importlib.resources
import io
from collections.abc import Iterable
from pathlib import Path

import jinja2

from wggw.core.model import Interface, Peer, Tenant, gateway_address
from wggw.fsutil import atomic_write

__all__ = [
    "atomic_write",
    "client_config",
    "gateway_config",
    "qr_png_or_svg",
    "qr_text",
    "write_qr",
]

QR_SUFFIXES = (".png", ".svg")


def _loader() -> jinja2.BaseLoader:
    try:
        root = importlib.resources.files("wggw.templates")
    except ModuleNotFoundError:
        # Running from a checkout that is not installed: templates/ is a sibling of wggw/.
        return jinja2.FileSystemLoader(str(Path(__file__).resolve().parent.parent / "templates"))
    return jinja2.FunctionLoader(
        lambda name: (root / name).read_text() if (root / name).is_file() else None
    )


_env: jinja2.Environment | None = None


def _template(name: str) -> jinja2.Template:
    global _env
    if _env is None:
        # Not HTML: no autoescape. StrictUndefined: a typo must fail, not render a hole.
        _env = jinja2.Environment(
            loader=_loader(),
            autoescape=False,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
    return _env.get_template(name)


def client_config(interface: Interface, tenant: Tenant, peer: Peer) -> str:
    """The client's wg-quick config: full tunnel to the gateway interface."""
    if peer.private_key is None:
        raise ValueError(f"peer {peer.ref} has no private key in wggw")
    return _template("client.conf.j2").render(
        interface=interface,
        tenant=tenant,
        peer=peer,
        private_key=peer.private_key.reveal(),
        psk=peer.psk.reveal() if peer.psk else None,
    )


def gateway_config(interface: Interface, tenants: Iterable[Tenant], peers: Iterable[Peer]) -> str:
    """The gateway side of `interface` as a wg-quick file (for export/migration)."""
    addresses = [gateway_address(p) for t in tenants for p in t.pools]
    views = [
        {
            "ref": p.ref,
            "public_key": p.public_key,
            "psk": p.psk.reveal() if p.psk else None,
            "addresses": p.addresses,
            "keepalive": p.keepalive,
        }
        for p in peers
    ]
    return _template("gateway.conf.j2").render(
        interface=interface,
        private_key=interface.private_key.reveal(),
        addresses=addresses,
        peers=views,
    )


def qr_text(data: str) -> str:
    """A QR code drawn with block characters for a terminal."""
    import segno

    buf = io.StringIO()
    segno.make(data, error="L").terminal(out=buf, compact=True)
    return buf.getvalue()


def qr_png_or_svg(data: str, suffix: str) -> bytes:
    """A QR code as PNG or SVG bytes, by file suffix ('.png' / '.svg')."""
    import segno

    suffix = suffix.lower()
    if suffix not in QR_SUFFIXES:
        raise ValueError(f"QR output must end in {' or '.join(QR_SUFFIXES)}")
    buf = io.BytesIO()
    segno.make(data, error="L").save(buf, kind=suffix[1:], scale=6, border=4)
    return buf.getvalue()


def write_qr(data: str, path: Path) -> None:
    """PNG or SVG by suffix, written 0600 (the code holds the private key)."""
    atomic_write(path, qr_png_or_svg(data, path.suffix))

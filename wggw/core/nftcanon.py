"""Canonical form of wggw's nftables table as nft's JSON lists it (pure).

Two parts, so that observation compares the full content at the cost of one `nft -j list`:
- `elements`: every set/map element in the spelling nftables.render uses ("10.0.0.0/24 :
  203.0.113.10", "fd00::/64 . fd00::/64", marks in hex), per set, sorted: compared with what
  wggw would load, element by element;
- `body`: a hash of everything else (set declarations, chains with hook, priority and policy,
  every rule with its expressions, in order), without handles, counter values and elements:
  compared with the body the kernel held right after wggw loaded the same text.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ParsedTable:
    digest: str | None
    elements: tuple[tuple[str, tuple[str, ...]], ...]
    body: str


def _item(value: Any, data: bool = False) -> str:
    """One key or value of an element: an address, prefix, range, concatenation or mark."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:#x}" if data else str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return (
            " : ".join([_item(value[0]), _item(value[1], data=True)])
            if len(value) == 2
            else json.dumps(value, sort_keys=True)
        )
    if isinstance(value, dict):
        if "prefix" in value:
            return f"{value['prefix']['addr']}/{value['prefix']['len']}"
        if "range" in value:
            return "-".join(_item(v) for v in value["range"])
        if "concat" in value:
            # marks in a concatenation are hex, as render spells them
            return " . ".join(_item(v, data=isinstance(v, int)) for v in value["concat"])
        if "elem" in value:  # an element with options (timeout, comment, counter...)
            inner = dict(value["elem"])
            val = inner.pop("val")
            return f"{_item(val)} {json.dumps(inner, sort_keys=True)}"
    return json.dumps(value, sort_keys=True)


def _strip(value: Any) -> Any:
    """Drop what changes without anyone changing the table: handles and counter values."""
    if isinstance(value, dict):
        if "counter" in value and isinstance(value["counter"], dict):
            return {"counter": {}}
        return {k: _strip(v) for k, v in value.items() if k != "handle"}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def parse(objs: list[dict[str, Any]]) -> ParsedTable:
    digest = None
    elements: dict[str, tuple[str, ...]] = {}
    body = []
    for obj in objs:
        if "metainfo" in obj:
            continue
        kind = next(iter(obj))
        inner = dict(obj[kind])
        if kind in ("set", "map"):
            elements[inner["name"]] = tuple(sorted(_item(e) for e in inner.pop("elem", [])))
        if kind == "rule" and digest is None and str(inner.get("comment", "")).startswith("wggw "):
            digest = inner["comment"].split(" ", 1)[1]
        body.append({kind: _strip(inner)})
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    body_hash = hashlib.sha256(text.encode()).hexdigest()
    return ParsedTable(digest, tuple(sorted(elements.items())), body_hash)

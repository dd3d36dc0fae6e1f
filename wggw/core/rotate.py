"""The key rotation and expiry policy (pure: the clock and observations are passed in).

A peer is due when its current key is older than the policy: the operator's
--older-than, else the tenant's own rotate_after, else DEFAULT_ROTATE_AFTER. Only peers
whose private key wggw holds can be rotated; the others need their owner's action.
A rotated peer keeps its old key (on its own address) until the new key has completed a
handshake or the grace period has ended; then the old key is retired.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from wggw.core.model import Peer, State

DEFAULT_ROTATE_AFTER = 90 * 86400  # 90 days
DEFAULT_GRACE = 7 * 86400  # 7 days for a user to pick up the new config


@dataclass
class Decision:
    rotate: list[Peer] = field(default_factory=list)  # due, key held by wggw
    own_key: list[Peer] = field(default_factory=list)  # due, but the owner holds the key
    in_grace: list[Peer] = field(default_factory=list)  # due but still switching keys
    retire: list[Peer] = field(default_factory=list)  # old key's time is over
    expire: list[Peer] = field(default_factory=list)  # past expires_at: remove


def policy_age(peer: Peer, state: State, older_than: int | None) -> int:
    if older_than is not None:
        return older_than
    tenant = next((t for t in state.tenants if t.name == peer.tenant), None)
    if tenant is not None and tenant.rotate_after is not None:
        return tenant.rotate_after
    return DEFAULT_ROTATE_AFTER


def is_expired(peer: Peer, now: float) -> bool:
    return peer.expires_at is not None and peer.expires_at <= now


def should_retire(peer: Peer, now: float, handshakes: Mapping[str, float]) -> bool:
    """The old key goes once the new key has shaken hands (after it was made) or grace ended."""
    old = peer.retiring
    if old is None:
        return False
    new_hs = handshakes.get(peer.public_key, 0.0)
    return old.retire_at <= now or new_hs >= peer.key_created_at > 0


def housekeeping(state: State, now: float, handshakes: Mapping[str, float]) -> Decision:
    """What `apply` does unasked: retire finished rotations, remove expired peers."""
    d = Decision()
    for p in state.peers:
        if is_expired(p, now):
            d.expire.append(p)
        elif should_retire(p, now, handshakes):
            d.retire.append(p)
    return d


def decide(
    state: State,
    now: float,
    handshakes: Mapping[str, float],
    older_than: int | None = None,
    selected: set[str] | None = None,
) -> Decision:
    """The whole rotation decision; `selected` limits rotation to these peer refs."""
    d = housekeeping(state, now, handshakes)
    gone = {p.ref for p in d.expire}
    retiring_now = {p.ref for p in d.retire}
    for p in state.peers:
        if p.ref in gone or (selected is not None and p.ref not in selected):
            continue
        if now - p.key_created_at < policy_age(p, state, older_than):
            continue
        if p.private_key is None:
            d.own_key.append(p)
        elif p.retiring is not None and p.ref not in retiring_now:
            d.in_grace.append(p)  # one rotation at a time: finish the last one first
        else:
            d.rotate.append(p)
    return d

"""Back off from a tool that keeps undoing wggw's work: bounded repairs per minute per kind
of object, then an exponentially growing pause, during which the kind is *contested*.

Pure (the caller passes the time). Holding a repair back never removes anything: what
stays in place (the nft guard, the other rules) keeps failing closed.
"""

from __future__ import annotations

from collections import deque

from wggw.core import plan as p

KINDS = {
    p.ReplaceNft: "nft",
    p.DeleteNft: "nft",
    p.AddRule: "rule",
    p.DelRule: "rule",
    p.AddRoute: "route",
    p.DelRoute: "route",
    p.AddAddress: "address",
    p.DelAddress: "address",
    p.SetLink: "link",
    p.CreateDevice: "device",
    p.ConfigureDevice: "device",
    p.DeleteDevice: "device",
    p.UpsertPeer: "peer",
    p.RemovePeer: "peer",
    p.SetSysctl: "sysctl",
}
WINDOW = 60.0


def kind_of(change: p.Change) -> str:
    return KINDS.get(type(change), "other")


class Backoff:
    """`limit` repair rounds of one kind per minute (a round that re-adds 40 rules at once
    is one repair of kind "rule"); past it each further repair waits
    `base` * 2**n seconds (n = repairs over the limit in the window), at most `cap`."""

    def __init__(self, limit: int = 10, base: float = 1.0, cap: float = 60.0) -> None:
        self.limit, self.base, self.cap = limit, base, cap
        self._done: dict[str, deque[float]] = {}
        self._until: dict[str, float] = {}

    def _window(self, kind: str, now: float) -> deque[float]:
        done = self._done.setdefault(kind, deque())
        while done and done[0] <= now - WINDOW:
            done.popleft()
        return done

    def allowed(self, kind: str, now: float) -> bool:
        return now >= self._until.get(kind, 0.0)

    def record(self, kind: str, now: float) -> None:
        """One repair of `kind` was made at `now`."""
        done = self._window(kind, now)
        done.append(now)
        over = len(done) - self.limit
        if over > 0:
            self._until[kind] = now + min(self.cap, self.base * 2 ** (over - 1))

    def contested(self, now: float) -> set[str]:
        """Kinds repaired more than `limit` times in the last minute."""
        return {k for k in self._done if len(self._window(k, now)) > self.limit}

    def when(self, kinds, now: float) -> float:
        """The earliest time one of `kinds` may be repaired again (`now` if one may now)."""
        return min((max(now, self._until.get(k, 0.0)) for k in kinds), default=now)

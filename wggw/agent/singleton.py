"""One agent per host: the agent's side of the lock in wggw/ops/agentlock.py (there, so that
`wggw down` can take the same lock and see a running agent)."""

from __future__ import annotations

from wggw.ops.agentlock import AgentLock, lock_path

__all__ = ["AgentLock", "lock_path"]

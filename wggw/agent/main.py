"""Start the agent: take the one-agent-per-host lock, set up logs and metrics, run the loop,
and leave the data plane as it is on the way out (stopping never tears anything down)."""

from __future__ import annotations

from typing import Optional

from wggw.agent.logs import Log
from wggw.agent.loop import Agent
from wggw.agent.metrics import AgentMetrics
from wggw.agent.singleton import AgentLock


def run_agent(store, backend: Optional[str], resync: float, log_format: str,
              metrics_listen: Optional[str], metrics_max_peers: int) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code. LockBusyError (exit 75) if another
    agent runs in this runtime directory."""
    lock = AgentLock().acquire()
    try:
        log = Log(log_format)
        metrics = AgentMetrics(metrics_max_peers)
        if metrics_listen:
            try:
                metrics.serve(metrics_listen)
            except OSError as e:
                from wggw.core.errors import ValidationError
                raise ValidationError("metrics-listen", f"cannot listen on {metrics_listen}: "
                                      f"{e.strerror}") from None
            log("metrics", listen=metrics_listen)
        log("start", resync=resync, backend=backend or "auto")
        return Agent(store, backend, log, metrics, resync).run()
    finally:
        lock.release()

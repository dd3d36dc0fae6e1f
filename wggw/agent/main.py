"""Start the agent: take the one-agent-per-host lock, set up logs and metrics, run the loop,
and leave the data plane as it is on the way out (stopping never tears anything down)."""

from __future__ import annotations

from wggw.agent import fleetview
from wggw.agent.backoff import Backoff
from wggw.agent.fleet import Fleet
from wggw.agent.logs import Log
from wggw.agent.loop import Agent
from wggw.agent.metrics import AgentMetrics
from wggw.agent.singleton import AgentLock


def run_agent(
    store,
    backend: str | None,
    resync: float,
    log_format: str,
    metrics_listen: str | None,
    metrics_max_peers: int,
    max_repairs: int = 10,
    gateway: str | None = None,
) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code. LockBusyError (exit 75) if another
    agent runs in this runtime directory. With `gateway`, only what is placed on that gateway
    of the store's fleet (agent/fleetview.py), reported back to the store."""
    if gateway is not None:
        _check_gateway(store, gateway)
        store = fleetview.GatewayStore(store, gateway)
    lock = AgentLock().acquire()
    try:
        _check_role(fleetview.whole(store).load(), gateway)
        log = Log(log_format)
        metrics = AgentMetrics(metrics_max_peers)
        if metrics_listen:
            try:
                metrics.serve(metrics_listen)
            except OSError as e:
                from wggw.core.errors import ValidationError

                raise ValidationError(
                    "metrics-listen", f"cannot listen on {metrics_listen}: {e.strerror}"
                ) from None
            log("metrics", listen=metrics_listen)
        log(
            "start",
            resync=resync,
            backend=backend or "auto",
            max_repairs=max_repairs,
            gateway=gateway or "-",
        )
        fleet = Fleet(getattr(fleetview.whole(store), "url", None), gateway, metrics, log)
        agent = Agent(store, backend, log, metrics, resync, Backoff(limit=max_repairs), fleet)
        return agent.run()
    finally:
        lock.release()


def _check_role(state, gateway: str | None) -> None:
    """A fleet's store needs the agent's gateway (without one it would run every gateway's
    part here), and the host keeps its role (ops/hostrole.py); refused before any round."""
    from wggw.core.errors import ValidationError
    from wggw.ops import hostrole

    if gateway is None and state.gateways:
        names = ", ".join(g.name for g in state.gateways)
        raise ValidationError(
            "gateway",
            f"the store is a fleet's (gateways: {names}): start the agent with --gateway NAME "
            "(or WGGW_GATEWAY)",
        )
    hostrole.check(state, gateway)
    hostrole.remember(state, gateway)


def _check_gateway(store, gateway: str) -> None:
    """An unknown gateway runs nothing: an agent started with a misspelt name would tear
    down the whole host. Refused instead (exit 2), before anything is touched."""
    from wggw.core.errors import ValidationError

    if gateway not in {g.name for g in store.load().gateways}:
        raise ValidationError(
            "gateway", f"no gateway named {gateway!r} in the store (see `wggw gateway list`)"
        )

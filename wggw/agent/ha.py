"""The agent's part in high availability (issue 14): after every round, keepalived's
configuration for this gateway rendered and reloaded when it changed; the health keepalived's
track script asks for; the takeover kick when keepalived says this gateway became MASTER.

Which gateway this is: the agent's `gateway` (`wggw agent --gateway NAME`) or WGGW_GATEWAY.
VRRP settings (the same on every gateway of an interface): WGGW_HA_FAILBACK (preempt |
nopreempt), WGGW_HA_ADVERT_INT (seconds, default 0.5).
"""

from __future__ import annotations

import os
import time

from wggw.core import ha as core_ha
from wggw.core.errors import ValidationError, WggwError
from wggw.core.model import State
from wggw.ops import ha


def settings_from_env(gateway: str) -> ha.Settings:
    failback = os.environ.get("WGGW_HA_FAILBACK", "preempt")
    if failback not in core_ha.FAILBACK:
        raise ValidationError("WGGW_HA_FAILBACK", f"{failback!r}: want preempt or nopreempt")
    raw = os.environ.get("WGGW_HA_ADVERT_INT", "0.5")
    try:
        advert = float(raw)
    except ValueError:
        advert = 0.0
    if not 0.01 <= advert <= 40:
        raise ValidationError("WGGW_HA_ADVERT_INT", f"{raw!r}: want seconds, 0.01 to 40")
    return ha.Settings(gateway, failback=failback, advert_int=advert)


class HaAgent:
    def __init__(self, gateway: str | None, log, metrics=None) -> None:
        self.gateway = gateway
        self.log, self.metrics = log, metrics
        self.settings = settings_from_env(gateway) if gateway else None
        self.converged = False  # the last round converged (set by the loop)
        self.state: State | None = None
        self.uplinks: frozenset[str] = frozenset()
        self.floating: frozenset[str] = frozenset()  # addresses keepalived moves: not drift
        self.role: dict[str, str] = {}  # interface -> MASTER/BACKUP/FAULT, as keepalived said
        self.arrived: set[str] = set()  # tenants moving here whose peers were kicked

    def after_round(self, state, system) -> None:
        """Render keepalived's configuration; reload it when the text changed."""
        self.state = state
        if self.settings is None:
            return
        self.floating = core_ha.floating_addresses(state)
        if not any(core_ha.is_ha(i) for i in state.interfaces) and not ha.conf_path().exists():
            return  # nothing of HA here: no work per round
        try:
            facts = system.facts()
            self.uplinks = ha.uplinks(state, facts)
            changed = ha.sync_config(ha.config_text(state, self.settings, facts))
        except Exception as e:  # noqa: BLE001 - the round itself converged; say what failed here
            error = str(e) if isinstance(e, WggwError) else f"{type(e).__name__}: {e}"
            self.log("error", trigger="keepalived", error=error)
            return
        if changed:
            self.log("keepalived", config=str(ha.conf_path()), reloaded=ha.keepalived_pid())

    def kick_arrivals(self, state, store, system) -> None:
        """A tenant moving here (`tenant move`): once a round has put it on this gateway,
        start handshakes to its peers' last endpoints, so its clients roam here while the
        old gateway still holds it (make before break, nothing to do on the clients)."""
        moving = {t.name: t.interface for t in state.tenants if t.moving_to == self.gateway}
        self.arrived &= moving.keys()  # a finished or aborted move may come again
        for tenant, iface in moving.items():
            if self.gateway is None or tenant in self.arrived:
                continue
            self.arrived.add(tenant)
            try:
                kicked = ha.kick_peers(store, state, iface, system, {tenant})
            except Exception as e:  # noqa: BLE001 - the clients then come by themselves
                error = str(e) if isinstance(e, WggwError) else f"{type(e).__name__}: {e}"
                self.log("error", trigger="move", error=error)
                continue
            self.log("move", tenant=tenant, interface=iface, kicked=kicked)

    def resumed(self, store, system) -> None:
        """The agent was frozen (SIGSTOP, a stalled VM) and runs again. Its keepalived,
        frozen with it, may come back as the master it was and take the addresses back from
        the standby without a state change, hence without a notify: kick the peers of every
        interface this gateway still calls MASTER and whose endpoint address is really here
        (a kick from a gateway that is not the master would pull clients away from it)."""
        if self.state is None or self.gateway is None:
            return
        here = ha.local_addresses()
        for iface in (i for i in self.state.interfaces if self.role.get(i.name) == "MASTER"):
            ip = core_ha.endpoint_ip(iface)
            if ip is None or str(ip) not in here:
                continue
            try:
                kicked = ha.takeover(store, self.state, iface.name, system)
            except Exception as e:  # noqa: BLE001 - the clients retry by themselves
                error = str(e) if isinstance(e, WggwError) else f"{type(e).__name__}: {e}"
                self.log("error", trigger="resumed", error=error)
                continue
            if self.metrics is not None:
                self.metrics.ha_kicked.inc(kicked)
            self.log("vrrp", interface=iface.name, state="MASTER", resumed=True, kicked=kicked)

    def health(self) -> dict:
        if self.state is None:
            return {"healthy": False, "reason": "no round yet"}
        try:
            ok, reason = ha.healthy(self.uplinks, self.converged)
        except Exception as e:  # noqa: BLE001 - a host we cannot read is not healthy
            ok, reason = False, f"cannot read the host: {e}"
        return {"healthy": ok, "reason": reason}

    def notify(self, request: dict, store, system) -> dict:
        """keepalived's notify: a VRRP instance changed state. MASTER: kick the peers."""
        iface = core_ha.interface_of(str(request.get("instance", "")))
        role = str(request.get("state", ""))
        if iface is None:
            return {"ok": False, "error": f"not a wggw instance: {request.get('instance')!r}"}
        self.role[iface] = role
        if self.metrics is not None:
            self.metrics.ha_master.labels(iface).set(1 if role == "MASTER" else 0)
        started = time.monotonic()
        kicked = 0
        lines: list[str] = []
        if role == "MASTER" and self.state is not None:
            try:
                kicked = ha.takeover(store, self.state, iface, system, lines.append)
            except Exception as e:  # noqa: BLE001 - the agent goes on; the client retries itself
                error = str(e) if isinstance(e, WggwError) else f"{type(e).__name__}: {e}"
                self.log("error", trigger="takeover", error=error)
                return {"ok": False, "error": error}
        if self.metrics is not None:
            self.metrics.ha_kicked.inc(kicked)
        ms = round((time.monotonic() - started) * 1000, 1)
        self.log("vrrp", interface=iface, state=role, kicked=kicked, ms=ms)
        return {"ok": True, "lines": lines, "kicked": kicked}

"""The gateways of a fleet (issue 13): add and remove them, place an interface on gateways
(by priority: the first active, the others standing by), and read what each gateway runs
and what its agent last reported (core/fleetview.py). Like ops/objects.py: validate before
writing, one transaction, an audit record for every change.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from wggw.core import fleetview, validate
from wggw.core.errors import NotFoundError, ValidationError
from wggw.core.model import Gateway, Interface, State
from wggw.ops import fleetwait
from wggw.store.sqlite import Store


def find_gateway(state: State, name: str) -> Gateway:
    for g in state.gateways:
        if g.name == name:
            return g
    raise NotFoundError("gateway", f"no gateway named {name!r}")


def check_gateways(state: State, names: Iterable[str], field: str = "gateway") -> tuple[str, ...]:
    """Gateway names as given (priority order): known, each once."""
    out: list[str] = []
    for n in names:
        find_gateway(state, validate.name(field, n))
        if n in out:
            raise ValidationError(field, f"{n} is given twice")
        out.append(n)
    return tuple(out)


def add_gateway(
    store: Store,
    name: str,
    uplink: str | None = None,
    via: Iterable[str] = (),
    now: float | None = None,
) -> Gateway:
    validate.name("gateway", name)
    gw = Gateway(
        name=name,
        uplink=None if uplink is None else validate.device("uplink", uplink),
        via=validate.one_per_family("via", [validate.ip("via", v) for v in via]),
        created_at=time.time() if now is None else now,
    )
    with store.transaction() as tx:
        if any(g.name == name for g in tx.load().gateways):
            raise ValidationError("gateway", f"{name} already exists")
        tx.add_gateway(gw)
        tx.record_event("gateway.add", name, {"uplink": gw.uplink, "via": [str(v) for v in gw.via]})
    return gw


def set_gateway(
    store: Store, name: str, uplink: str | None = None, via: Sequence[str] | None = None
) -> Gateway:
    """Change a gateway's defaults for its tenants: `uplink` ("default": main's default
    route), `via` (["default"]: main's gateway); None leaves that setting as it is."""
    if uplink is None and via is None:
        raise ValidationError("gateway", "give --uplink and/or --via")
    new_uplink = None if uplink in (None, "default") else validate.device("uplink", uplink)
    new_via = None
    if via is not None:
        given = [] if list(via) == ["default"] else [validate.ip("via", v) for v in via]
        new_via = validate.one_per_family("via", given)
    with store.transaction() as tx:
        gw = find_gateway(tx.load(), name)
        gw = replace(
            gw,
            uplink=gw.uplink if uplink is None else new_uplink,
            via=gw.via if new_via is None else new_via,
        )
        tx.update_gateway(gw)
        tx.record_event("gateway.set", name, {"uplink": gw.uplink, "via": [str(v) for v in gw.via]})
    return gw


def users(state: State, name: str) -> list[str]:
    """What is placed on gateway `name`, in words (empty: nothing)."""
    placed = fleetview.placed_on(state, name)
    out = [f"interface {i}" for i in placed["interfaces"] + placed["standby"]]
    out += [f"tenant {t.name}" for t in state.tenants if name in (t.gateway, t.moving_to)]
    return out


def remove_gateway(store: Store, name: str) -> None:
    """Remove a gateway and its reports; refused while anything is placed on it."""
    with store.transaction() as tx:
        state = tx.load()
        find_gateway(state, name)
        placed = users(state, name)
        if placed:
            raise ValidationError(
                "gateway",
                f"{name} still runs {', '.join(placed)}; move or re-place them first",
            )
        tx.remove_gateway(name)
        tx.record_event("gateway.remove", name, {})


def set_interface_gateways(store: Store, name: str, gateways: Sequence[str]) -> Interface:
    """Place interface `name` on `gateways` (priority order; empty: the implicit local
    gateway). Refused while one of its tenants is moving (`tenant move` owns that)."""
    with store.transaction() as tx:
        state = tx.load()
        iface = validate.find_interface(state, name)
        wanted = check_gateways(state, gateways)
        moving = [t.name for t in state.tenants_of(name) if t.moving_to is not None]
        if moving:
            raise ValidationError(
                "interface", f"tenant(s) {', '.join(moving)} of {name} are moving; wait for it"
            )
        new = replace(iface, gateways=wanted)
        tx.update_interface(new)
        tx.record_event(
            "interface.set", name, {"gateways": list(wanted), "before": list(iface.gateways)}
        )
    return new


def list_gateways(store: Store, now: float | None = None) -> list[dict[str, Any]]:
    """Every gateway: what it runs and its agent's last report (lag, health, error, age)."""
    state, reports, generation = _read(store)
    return fleetview.gateway_views(state, reports, generation, _now(now))


def show_gateway(store: Store, name: str, now: float | None = None) -> dict[str, Any]:
    state, reports, generation = _read(store)
    gw = find_gateway(state, name)
    report = next((r for r in reports if r.gateway == name), None)
    return fleetview.gateway_view(state, gw, report, generation, _now(now))


def fleet_status(store: Store, now: float | None = None) -> dict[str, Any]:
    """`status --fleet`: read from the store alone (the agents' reports), no kernel."""
    state, reports, generation = _read(store)
    return fleetview.fleet_status(state, reports, store.peer_reports(), generation, _now(now))


def _read(store: Store):
    # The generation first: a report read after it is as new or newer, so a gateway that
    # is up to date never shows a lag.
    generation = fleetwait.generation(store)
    return store.load(), store.reports(), generation


def _now(now: float | None) -> float:
    return time.time() if now is None else now

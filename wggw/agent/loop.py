"""The agent's event loop: one thread, one `select`, and the reasons to reconcile.

Triggers: kernel events that touch what wggw owns (debounced), a store whose generation
moved (polled; the CLI also hands peer changes over the control socket), the periodic
resync, and a retry after a failure or a back-off pause. Every reconcile is the same
observe-plan-apply-verify (agent/apply.py). Kernel events that the agent's own apply caused
are read and dropped right after it, so they never trigger another round.
"""

from __future__ import annotations

import contextlib
import gc
import os
import selectors
import signal
import socket
import time
from collections.abc import Callable, Sequence

from wggw.agent import apply, fleetview, onepeer, sdnotify, stallwatch, storedelta
from wggw.agent.backoff import Backoff, kind_of
from wggw.agent.control import ControlServer
from wggw.agent.fleet import Fleet
from wggw.agent.ha import HaAgent
from wggw.agent.metrics import AgentMetrics
from wggw.backends import runfiles
from wggw.backends.netlink import events as kev
from wggw.core import naming
from wggw.core.errors import LockBusyError, WggwError
from wggw.core.plan import Observed
from wggw.ops import converge as reconcile
from wggw.ops.agentclient import store_id

DEBOUNCE = 0.03  # events of one fault arrive together; one reconcile for all of them
STORE_POLL = 0.5  # the fallback when a command did not tell the agent
STORE_POLL_LISTENING = 5.0  # ... while PostgreSQL's LISTEN tells it: only a safety net
LOCK_RETRY = 0.05  # the store lock was busy (a command is running)
MAX_RETRY = 30.0


class Agent:
    def __init__(
        self,
        store,
        backend: str | None,
        log,
        metrics: AgentMetrics,
        resync: float = 60.0,
        backoff: Backoff | None = None,
        fleet: Fleet | None = None,
    ) -> None:
        self.store, self.backend, self.log, self.metrics = store, backend, log, metrics
        # PostgreSQL's LISTEN, the store's up/down state, a gateway's reports (agent/fleet.py)
        self.fleet = fleet or Fleet(None, None, metrics, log)
        # A round under the gateway's lock only (agent/fleetview.py): others commit meanwhile.
        self.exclusive = fleetview.round_holds_store_lock(store)
        self.sel: selectors.BaseSelector | None = None
        self.listen_fd: int | None = None  # the LISTEN socket while it is in the select
        self.observed: Observed | None = None  # what the last round read (peer reports)
        # (generation, state) the host was last converged to: a store change that touched
        # only peers is applied as their delta against it (agent/storedelta.py).
        self.delta_base: tuple[int, object] | None = None
        self.system = apply.system_for(backend)
        self.resync = resync
        self.backoff = backoff or Backoff()
        self.applied_gen = -1
        self.reasons: set[str] = set()
        self.due: float | None = None  # when the pending reconcile runs
        self.failures = 0
        self.stopping = False
        self.watched: set[str] = set()  # link names whose events matter
        self.watched_index: set[int] = set()  # ... and their indexes (address events)
        self.sources: list = []
        self.shown_contested: set[str] = set()
        self.live: dict[str, str] = {}  # tenants converged by the last full round (onepeer)
        # (generation, state, result) of the last round: a resync with the store unchanged
        # reuses that state and its compiled desired state (50,000 peers compile in ~1 s).
        self.compiled: tuple[int, object, reconcile.Result] | None = None
        self.next_resync = time.monotonic() + resync
        # High availability (issue 14): keepalived's config and the health it tracks.
        gateway = self.fleet.gateway or os.environ.get("WGGW_GATEWAY") or None
        self.ha = HaAgent(gateway, log, metrics)
        # Notices a freeze of the process (agent/stallwatch.py); only where HA can apply.
        self.stalls: stallwatch.StallWatch | None = None

    # --- life cycle -----------------------------------------------------------
    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._stop)
        sel = selectors.DefaultSelector()
        rtnl, nft = kev.rtnl_events(), kev.nft_events()  # before the first converge: miss nothing
        self.sources = [rtnl, nft]
        self.sel = sel
        control = None
        if self.ha.settings is not None:
            self.stalls = stallwatch.StallWatch().start()
            sel.register(self.stalls, selectors.EVENT_READ)
        try:
            self.fleet.start()  # LISTEN before the first converge, like the kernel events
            self._listen()
            self._start()
            # Only now: a CLI that found the socket earlier would wait for us while holding
            # the store lock that the first converge needs.
            control = ControlServer()
            for src in (rtnl, nft, control):
                sel.register(src, selectors.EVENT_READ)
            self._loop(sel, control)
        finally:
            if control is not None:
                control.close()
            if self.stalls is not None:
                self.stalls.close()
            if self.fleet.listener is not None:
                self.fleet.listener.close()
            for src in (rtnl, nft):
                src.close()
            sel.close()
            sdnotify.notify("STOPPING=1")
            self.log("stop", note="the data plane stays as it is")
        return 0

    def _stop(self, signum, _frame) -> None:
        self.stopping = True

    def _start(self) -> None:
        started, state, observed = time.monotonic(), None, None
        gen, error = -1, None
        try:
            with fleetview.round_lock(self.store):
                gen = self.store.generation()
                report, result = apply.full_converge(self.store, self.system, self._echo("start"))
                self._drain()  # our own changes' events (a fault in this instant: the resync)
                gen = self._audit(result.changes, "start", self.store.generation())
                state, observed = self.store.load(), result.observed
                self._keep(gen, state, result)
                self.delta_base = (gen, state)
                self._track(state)
                self._converged(gen, time.monotonic() - started, "start", len(result.changes))
                self.ha.after_round(state, self.system)
                self.ha.kick_arrivals(state, self.store, self.system)
                for line in report.lines():
                    self.log("housekeeping", line=line)
        except Exception as e:  # noqa: BLE001 - retried from the loop like any failure
            error = self._failed("start", e)
        self.fleet.round_done(self.store, self.system, state, self.applied_gen, error, observed)
        sdnotify.notify("READY=1")
        self.next_resync = time.monotonic() + self.resync

    def _loop(self, sel, control: ControlServer) -> None:
        next_poll = next_dog = time.monotonic()
        dog = sdnotify.watchdog_interval()
        while not self.stopping:
            now = time.monotonic()
            wake = min(
                t
                for t in (
                    next_poll,
                    self.next_resync,
                    self.due,
                    next_dog if dog else None,
                    self.fleet.wake_at(),
                )
                if t is not None
            )
            timeout = max(0.0, min(wake - now, STORE_POLL))
            events = sel.select(timeout=timeout)
            for key, _ in events:
                if key.fileobj is control:
                    control.serve_one(self._handle)
                elif key.fileobj is self.stalls:
                    self._resumed(self.stalls.take())
                elif key.fileobj is self.fleet.listener:
                    self._notified()
                else:
                    self._kernel_events(key.fileobj.read())
            now = time.monotonic()
            if dog and now >= next_dog:
                sdnotify.notify("WATCHDOG=1")
                next_dog = now + dog
            self._fleet_tick(now)
            if now >= next_poll:
                next_poll = now + (STORE_POLL_LISTENING if self.listen_fd else STORE_POLL)
                # a store that is down is probed by the LISTEN reconnects (with back-off)
                if not self.fleet.store_down and self._store_generation() != self.applied_gen:
                    self._want("store", now)
            if now >= self.next_resync:
                self.next_resync = now + self.resync
                self._want("resync", now)
            if self.due is not None and now >= self.due:
                self._reconcile()

    # --- triggers -------------------------------------------------------------
    def _want(self, reason: str, now: float, delay: float = 0.0) -> None:
        self.reasons.add(reason)
        at = now + delay
        self.due = at if self.due is None else min(self.due, at)

    def _kernel_events(self, events: list) -> None:
        relevant = [e for e in events if self._relevant(e)]
        if relevant:
            self._want("drift", time.monotonic(), DEBOUNCE)
            first = relevant[0]
            self.log(
                "event",
                kind=("nft " if first.nft else "") + first.kind,
                deleted=first.deleted,
                count=len(relevant),
            )

    def _relevant(self, e) -> bool:
        if e.kind == "overrun":
            return True
        if e.nft:
            if e.nft_table == naming.NFT_TABLE:
                self.reasons.add("nft")  # someone else touched wggw's table: reload it
                return True
            return False
        if e.kind == "rule":
            return e.priority is not None and naming.owns_rule_pref(e.priority)
        if e.kind == "route":
            return e.table is not None and (naming.owns_table(e.table) or e.table == 254)
        if e.kind == "link":
            return e.ifname is None or e.ifname in self.watched
        if e.address is not None and e.address in self.ha.floating:
            return False  # keepalived moving a floating address: no round (the kick waits)
        # addresses: wggw's own ride on its interfaces and the uplinks (others: docker, SLAAC)
        return not self.watched_index or e.ifindex in self.watched_index

    def _resumed(self, lost: float) -> None:
        """The process was frozen `lost` seconds and runs again (SIGSTOP/SIGCONT, a stalled
        VM): its keepalived may have taken the addresses back without a notify (agent/ha.py)."""
        if lost <= 0.0:
            return  # the wake-up of a freeze that an earlier take() already counted
        self.log("resumed", frozen_s=round(lost, 2))
        self.ha.resumed(self.store, self.system)

    def _store_generation(self) -> int:
        try:
            return self.store.generation()
        except WggwError as e:
            self.fleet.store_failed(e)
            return self.applied_gen

    # --- the fleet side: LISTEN, reconnects, heartbeats (agent/fleet.py) --------------
    def _listen(self) -> None:
        listener = self.fleet.listener
        if self.sel is not None and listener is not None and listener.up:
            listener.before_close = self._unlisten
            self.listen_fd = self.sel.register(listener, selectors.EVENT_READ).fd

    def _unlisten(self) -> None:
        """Out of the select before its socket closes (its number may come back reused)."""
        if self.sel is not None and self.listen_fd is not None:
            self.sel.unregister(self.listen_fd)
        self.listen_fd = None

    def _notified(self) -> None:
        gens = self.fleet.read()  # None: the connection broke, the reconnects take over
        if gens is not None and any(g != self.applied_gen for g in gens):
            self._want("store", time.monotonic())

    def _fleet_tick(self, now: float) -> None:
        if self.fleet.listener is not None and self.fleet.reconnect_due(now):
            if self.fleet.try_reconnect(now):
                self._listen()
                # The store's own session died with the server too, which psycopg learns on
                # its next use: that use, here, so that the resync finds a fresh one.
                with contextlib.suppress(WggwError):
                    self.store.generation()
                # Notifications sent while away are lost: everything afresh, at once.
                self.compiled, self.live = None, {}
                self._want("resync", now)
        if self.fleet.heartbeat_due(now):
            state = self.compiled[1] if self.compiled is not None else None
            self.fleet.report(self.store, self.system, state, self.applied_gen)

    def _drain(self) -> None:
        """Drop the events our own apply just caused (the kernel queued them synchronously)."""
        for src in self.sources:
            src.read()

    # --- reconcile ------------------------------------------------------------
    def _reconcile(self) -> None:
        reasons, now = self.reasons, time.monotonic()
        if self.fleet.store_down and self.fleet.listener is not None:
            # PostgreSQL is away: no round may wait on it (a connect can block for seconds);
            # its reconnect brings the full resync. Kernel drift is repaired meanwhile from
            # the state last applied, so the gateway keeps forwarding as it was.
            self.reasons, self.due = set(), None
            if reasons & {"drift", "nft"}:
                self._repair_offline(reasons)
            return
        self.observed = None
        error: str | None = None
        try:
            with fleetview.round_lock(self.store, timeout=0):
                self.reasons, self.due = set(), None
                self._reconcile_locked(reasons, now)
        except LockBusyError:
            self.due = now + LOCK_RETRY  # a command runs; it may be waiting for us: keep serving
            self.reasons |= reasons  # (also when it was our own writes' lock, inside the round)
            return
        except Exception as e:  # noqa: BLE001 - a resident process logs, backs off, carries on
            self.reasons, self.due = set(), None  # also when the lock itself failed (no store)
            error = self._failed("+".join(sorted(reasons)), e)
        else:
            if self.due is not None:
                error = "drift held back or undone (contested)"
        state = self.compiled[1] if self.compiled is not None else None
        self.fleet.round_done(
            self.store, self.system, state, self.applied_gen, error, self.observed
        )

    def _reconcile_locked(self, reasons: set[str], started: float) -> None:
        gen = self.store.generation()
        store_changed = gen != self.applied_gen
        if store_changed and reasons == {"store"} and self._store_delta(gen, started):
            return
        self.delta_base = None  # set again below once this round has converged
        trigger = "store" if store_changed else ("resync" if "resync" in reasons else "drift")
        if store_changed or "resync" in reasons:
            from wggw.ops import rotation

            with self._own_writes(0.0):
                report = rotation.housekeeping(self.store, self.system, time.time())
            for line in report.lines():
                self.log("housekeeping", line=line)
            gen = self.store.generation()
        cached = self.compiled if self.compiled is not None and self.compiled[0] == gen else None
        state = cached[1] if cached is not None else self.store.load()
        kept: list[reconcile.Result] = []
        # Store changes are the operator's intent: never held back. Drift repairs are rationed.
        hold: Callable = (
            (lambda c: False)
            if store_changed
            else (lambda c: not self.backoff.allowed(kind_of(c), time.monotonic()))
        )
        with reconcile.gc_paused():  # a round's ~10^6 objects hold no cycles (converge.py)
            applied, held, left = apply.repair(
                state,
                self.system,
                hold,
                self._echo(trigger),
                reload_nft="nft" in reasons,
                applied_hook=self._drain,
                previous=cached[2] if cached is not None else None,
                keep=kept.append,
            )
        if not store_changed:
            for change in applied:
                self.metrics.repairs.labels(kind_of(change)).inc()
            for kind in {kind_of(c) for c in applied}:  # the back-off counts rounds per kind
                self.backoff.record(kind, time.monotonic())
            gen = self._audit(applied, trigger, gen)
        # Kept under the generation after our own audit record (it changes no desired state),
        # so the next resync reuses it.
        self._keep(gen, state, kept[-1])
        self.observed = kept[-1].observed  # the peers' figures, for the reports
        self._report_contested(held)
        self._track(state, held + left)
        self.ha.converged = not (held or left)
        self.ha.after_round(state, self.system)
        self.ha.kick_arrivals(state, self.store, self.system)
        if left:  # undone at once: try again, rationed by the back-off like any repair
            self.log("undone", changes=len(left), object=left[0].describe())
        if held or left:
            now = time.monotonic()
            retry = self.backoff.when({kind_of(c) for c in held + left}, now + DEBOUNCE)
            self._want("drift", now, retry - now)
            self.metrics.duration.labels(trigger).observe(time.monotonic() - started)
            return
        self._converged(gen, time.monotonic() - started, trigger, len(applied))
        self.delta_base = (gen, state)

    def _repair_offline(self, reasons: set[str]) -> None:
        """Drift repair without the store: against the state last applied (the delta's
        base, newer than the compiled state when peers came since), rationed by the back-off
        like any repair; no audit record (the store is away), said in the log instead."""
        base = self.delta_base or (self.compiled[:2] if self.compiled is not None else None)
        if base is None:
            return
        cached = (
            self.compiled if self.compiled is not None and self.compiled[0] == base[0] else None
        )
        started = time.monotonic()
        try:
            applied, held, left = apply.repair(
                base[1],
                self.system,
                lambda c: not self.backoff.allowed(kind_of(c), time.monotonic()),
                self._echo("drift"),
                reload_nft="nft" in reasons,
                applied_hook=self._drain,
                previous=cached[2] if cached is not None else None,
            )
        except Exception as e:  # noqa: BLE001 - logged; the next event or the resync retries
            self.log("error", trigger="drift", error=f"repair without the store: {e}")
            return
        for change in applied:
            self.metrics.repairs.labels(kind_of(change)).inc()
        for kind in {kind_of(c) for c in applied}:
            self.backoff.record(kind, time.monotonic())
        self._report_contested(held)
        if held or left:
            retry = self.backoff.when({kind_of(c) for c in held + left}, time.monotonic())
            self._want("drift", time.monotonic(), max(DEBOUNCE, retry - time.monotonic()))
        self.log(
            "repaired",
            changes=len(applied),
            ms=round((time.monotonic() - started) * 1000, 1),
            note="from the state last applied; the store is away (no audit record)",
        )

    def _own_writes(self, wait: float):
        """The store's command lock for the round's own writes (housekeeping, the audit
        record), taken with a short wait where the round does not hold it already (a fleet
        gateway): a command on this host may hold it while it waits for this agent's answer
        over the control socket, so the agent must not wait for it for long."""
        if self.exclusive:
            return contextlib.nullcontext()
        return fleetview.whole(self.store).locked(timeout=wait)

    def _store_delta(self, gen: int, started: float) -> bool:
        """A peers-only store change as a delta (agent/storedelta.py); False: not one, the
        full round follows. Only where commits arrive by NOTIFY from anywhere (PostgreSQL):
        on one host the CLI hands a peer change to the agent itself."""
        base = self.delta_base
        if base is None or self.fleet.listener is None or not self.live:
            return False
        state = self.store.load()
        changes = storedelta.peer_delta(base[1], state, self.live)  # type: ignore[arg-type]
        if changes is None:
            return False
        if changes:
            apply_peers = getattr(self.system, "apply_peers", None)  # the fake has none
            (apply_peers or self.system.apply)(changes, self._echo("store"))
            self._drain()
        self.delta_base, self.observed = (gen, state), None
        self._track(state)
        self._converged(gen, time.monotonic() - started, "store", len(changes))
        return True

    def _audit(self, applied: list, trigger: str, gen: int) -> int:
        """Record what the agent changed on the host of its own accord (drift repaired, or
        the start) in the store's audit chain; returns the generation after it. The caller
        holds the store lock, so the generation moved only by this record: it is taken as
        applied at once, or the agent would wake itself for a "store change" of its own
        (and a store round is never held back by the back-off)."""
        if not applied:
            return gen
        from wggw.ops import audit

        by_kind: dict[str, list[str]] = {}
        for change in applied:
            by_kind.setdefault(kind_of(change), []).append(change.describe())
        try:
            with self._own_writes(0.5):
                audit.record_repairs(self.store, by_kind, trigger)
        except WggwError as e:  # the host is repaired all the same; say the record is missing
            self.log("error", trigger=trigger, error=f"audit record not written: {e}")
            return gen
        new = self.store.generation()
        if not self.exclusive and new != gen + 1:
            # Another commit came in between (PostgreSQL bumps once per commit): left
            # unapplied, so that the next round reads the store again.
            return gen
        if self.applied_gen == gen:
            self.applied_gen = new
        return new

    def _report_contested(self, held: list) -> None:
        counts: dict[str, int] = {}
        for change in held:
            counts[kind_of(change)] = counts.get(kind_of(change), 0) + 1
        for kind in set(counts) | self.shown_contested:  # 0 again once it holds
            self.metrics.contested.labels(kind).set(counts.get(kind, 0))
        self.shown_contested |= set(counts)
        for kind, n in counts.items():
            self.log(
                "contested",
                kind=kind,
                held=n,
                object=next(c.describe() for c in held if kind_of(c) == kind),
                note="something keeps undoing it; repairs paused, the rest stays fail-closed",
            )

    def _converged(self, gen: int, seconds: float, trigger: str, changes: int) -> None:
        self.applied_gen = gen
        self.failures = 0
        self.ha.converged = True
        self.metrics.duration.labels(trigger).observe(seconds)
        self.metrics.last.set(time.time())
        self.metrics.generation.set(gen)
        if changes or trigger == "start":
            self.log(
                "converged",
                trigger=trigger,
                changes=changes,
                ms=round(seconds * 1000, 1),
                generation=gen,
            )
        sdnotify.notify(f"STATUS=converged (generation {gen}, last trigger {trigger})")
        self._reap()

    def _failed(self, trigger: str, error: Exception) -> str:
        if not isinstance(error, WggwError):
            error = RuntimeError(f"unexpected {type(error).__name__}: {error}")
        else:
            self.fleet.store_failed(error)  # counted there if it is the store's
        self.failures += 1
        self.ha.converged = False
        delay = min(MAX_RETRY, 0.5 * 2 ** (self.failures - 1))
        self.metrics.errors.inc()
        self.log("error", trigger=trigger, error=str(error), retry_in=delay)
        sdnotify.notify(f"STATUS=failing: {error}")
        self.live = {}  # one-peer changes take the observing path until a round succeeds
        self._want("retry", time.monotonic(), delay)
        return str(error)

    def _keep(self, gen: int, state, result: reconcile.Result) -> None:
        """Remember the compiled desired state of `gen`, not the observation (10,000s of
        peers' live state that the next round reads afresh anyway). The heap is settled only
        when what is kept changed: a repair's audit record moves the generation, not these
        objects (and a full collection at 50,000 peers takes most of a second)."""
        changed = (
            self.compiled is None
            or self.compiled[1] is not state
            or self.compiled[2].desired is not result.desired
        )
        self.compiled = (gen, state, reconcile.Result(result.desired, Observed(), [], result.facts))
        if changed:
            _settle_heap()

    def _track(self, state, drift: Sequence = ()) -> None:
        self.live = onepeer.live_tenants(state)
        self.watched = {i.name for i in state.interfaces} | {
            t.uplink for t in state.tenants if t.uplink
        }
        known = True
        if any(t.uplink is None for t in state.tenants):  # they leave by main's default route
            try:
                self.watched |= {r.dev for r in self.system.facts().default_routes.values()}
            except Exception:  # noqa: BLE001 - unknown: address events of every link count
                known = False
        self.watched_index = set()
        for name in self.watched if known else ():
            try:
                self.watched_index.add(socket.if_nametoindex(name))
            except OSError:
                pass  # not there (yet): its link event brings the next round
        backend = self.backend
        self.metrics.live.update(state, lambda: apply.system_for(backend), drift)

    def _echo(self, trigger: str):
        def echo(line: str) -> None:
            self.log("apply", trigger=trigger, change=line.removeprefix("[#] "))

        return echo

    def _reap(self) -> None:
        """wireguard-go processes the agent started are its children: reap the dead ones."""
        for path in runfiles.runtime_dir().glob("*.pid"):
            try:
                os.waitpid(int(path.read_text().split()[0]), os.WNOHANG)
            except (OSError, ValueError, IndexError, ChildProcessError):
                pass

    # --- control requests (the CLI holds the store lock and waits) ----------------
    def _handle(self, request: dict) -> dict:
        op = request.get("op")
        if op == "ping":
            return {"ok": True, "lines": [], "pid": os.getpid(), "generation": self.applied_gen}
        if op == "health":  # keepalived's track script (agent/hahook.py) asks this, often: cheap
            state = self.compiled[1] if self.compiled is not None else None
            details = self.fleet.health(self.system, state)
            mine = self.ha.health()  # converged, and the uplinks of the floating tenants
            healthy = bool(details["healthy"]) and bool(mine["healthy"])
            reason = details["uplink"] or details["error"] if mine["healthy"] else mine["reason"]
            return {
                **details,
                "ok": True,  # answered (as in every reply); the check reads "healthy"
                "lines": [],
                "generation": self.applied_gen,
                "healthy": healthy,
                "reason": reason or "ok",
            }
        if op == "ha":  # keepalived's notify: a VRRP state change (MASTER: kick the peers)
            reply = self.ha.notify(request, self.store, self.system)
            self._drain()
            return reply
        if op == "stop":  # `wggw down --stop-agent`: exit cleanly, the data plane stays
            self.stopping = True
            self.log("stopping", reason="asked over the control socket")
            return {"ok": True, "lines": [], "pid": os.getpid()}
        if op != "peer":
            return {"ok": False, "error": f"unknown request {op!r}"}
        if request.get("store") != store_id(self.store):
            return {"ok": False, "other_store": True, "error": "this agent keeps another store"}
        if not fleetview.owns_peer_change(self.store, str(request.get("tenant"))):
            line = f"Nothing to do here: tenant {request.get('tenant')} is not on this gateway."
            return {"ok": True, "lines": [line], "ms": 0.0, "path": "elsewhere"}
        started, cpu = time.monotonic(), time.thread_time()
        lines: list[str] = []
        try:
            before = self.applied_gen
            changes, path = self._peer_change(request, lines)
        except Exception as e:  # noqa: BLE001 - the CLI gets the one line, the agent goes on
            error = str(e) if isinstance(e, WggwError) else f"unexpected {type(e).__name__}: {e}"
            self.log("error", trigger="peer", error=error)
            self._want("retry", time.monotonic(), 0.5)  # and a full round soon after
            return {"ok": False, "error": error}
        finally:
            self._drain()
        seconds, cpu = time.monotonic() - started, time.thread_time() - cpu
        self.metrics.duration.labels("peer").observe(seconds)
        gen = self._store_generation()
        if gen == before + 1:  # the CLI's one commit, now applied: no full round for it
            self.applied_gen = gen
            self.metrics.generation.set(gen)
        self.log(
            "peer",
            tenant=request.get("tenant"),
            peer=request.get("peer"),
            changes=len(changes),
            ms=round(seconds * 1000, 2),
            path=path,
            cpu_ms=round(cpu * 1000, 2),
        )
        last = (
            f"{len(changes)} change(s) applied by the wggw agent."
            if changes
            else "Nothing to do: the host matches the store."
        )
        return {"ok": True, "lines": [*lines, last], "ms": seconds * 1000, "path": path}

    def _peer_change(self, request: dict, lines: list[str]) -> tuple[list, str]:
        """The delta (agent/onepeer.py) on a tenant the agent has converged; else, or when
        the device refuses it, the observing one-peer reconcile (which verifies by reading
        the device again, and runs the whole converge for a tenant not live yet)."""
        tenant, peer = str(request["tenant"]), request.get("peer")
        keys = request.get("keys", [])
        try:
            changes = onepeer.delta(
                self.store, self.system, self.live, tenant, peer, keys, lines.append
            )
            if changes is not None:
                return changes, "delta"
        except WggwError as e:
            self.log("error", trigger="peer", error=str(e), note="falling back to a reconcile")
            lines.clear()
        changes = apply.peer_converge(self.store, self.system, tenant, peer, keys, lines.append)
        return changes, "reconcile"


def _settle_heap() -> None:
    """Move what the agent keeps (the state and its compiled desired state: millions of
    objects at 50,000 peers) out of the cyclic collector's sight. Every round builds as many
    short-lived objects again, and each collection they trigger would otherwise walk the kept
    ones too (~35 % of a no-op resync). Refcounting still frees them when replaced; a collect
    first, so that no garbage is frozen with them."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()

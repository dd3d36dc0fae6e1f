"""An in-memory host for tests: observes and applies planned changes like the real
backends, and records each applied change as its `[#]` text. It lets pure tests prove
that every transition converges (apply, then plan again, gives nothing).

Device keys behave as in the kernel: it keeps the X25519-clamped private key and treats a
key that differs from that copy, even by clamping only, as a new key that expires every
session of the device (counted in `session_resets`)."""

from __future__ import annotations

import base64
import threading
from dataclasses import replace

from wggw.core.hostfacts import DefaultRoute, HostFacts
from wggw.core.keys import public_of
from wggw.core.paths import Answer
from wggw.core.plan import (
    AddAddress,
    AddRoute,
    AddRule,
    AddTc,
    Change,
    ConfigureDevice,
    CreateDevice,
    DelAddress,
    DeleteDevice,
    DeleteNft,
    DelRoute,
    DelRule,
    DelTc,
    Observed,
    ObservedLink,
    ObservedNft,
    RemovePeer,
    ReplaceNft,
    SetLink,
    SetSysctl,
    UpsertPeer,
)
from wggw.core.planscript import echo_change
from wggw.core.wgtypes import WgDeviceState, WgPeerState


class FakeSystem:
    def __init__(self, links: tuple[str, ...] = ("eth0",)) -> None:
        self.facts_ = HostFacts(
            {4: DefaultRoute("eth0", "192.0.2.254"), 6: DefaultRoute("eth0", "2001:db8::fe")},
            frozenset({"192.0.2.1"}),
            frozenset(links),
        )
        self.state = Observed()
        self.log: list[str] = []
        self.endpoints: dict[str, dict[str, str]] = {}  # remembered, as in the runtime dir
        self.kicked: list[tuple[str, str]] = []
        # converge applies a device's peers in a thread alongside the routes and rules
        self.applying = threading.Lock()
        self.foreign: list = []  # foreign ip rules (core.paths.ForeignRule) set by a test
        self.main_routes: dict = {}  # family -> [RouteSpec] that a foreign rule leads to
        # device -> clamped private key, as the kernel keeps it
        self.private_keys: dict[str, str] = {}
        self.session_resets: dict[str, int] = {}  # device -> times a key SET expired its sessions

    def facts(self) -> HostFacts:
        return replace(self.facts_, links=self.facts_.links | frozenset(self.state.wg))

    def observe(self) -> Observed:
        return self.state

    def observe_devices(self) -> dict:
        return dict(self.state.wg)

    def observe_host(self) -> Observed:
        return replace(self.state, wg={})

    def observe_peers(self, ifname: str, keys) -> WgDeviceState | None:
        dev = self.state.wg.get(ifname)
        return (
            None
            if dev is None
            else replace(
                dev, peers={k: p for k, p in dev.peers.items() if keys is None or k in keys}
            )
        )

    def has_routes(self, routes) -> bool:
        return all(r in self.state.routes for r in routes)

    def restore_sysctls(self) -> list[SetSysctl]:
        return []

    def check_nft(self, text: str) -> None:
        pass

    def route_answers(self, probes):
        """Each probe takes its tenant's default route if the fake has it (the fake has no
        rules of its own), else a route of main set by the test in `self.main_routes`."""
        out = []
        for p in probes:
            own = [
                r
                for r in self.state.routes
                if r.family == p.family
                and r.dst == "default"
                and p.expect is not None
                and r.table == p.expect.table
            ]
            route = next(iter(self.main_routes.get(p.family, ())), None) if self.foreign else None
            route = route or (own[0] if own else None)
            out.append(
                Answer(route.table, route.dev, route.src, route.gateway)
                if route
                else Answer(error="ENETUNREACH")
            )
        return out

    def foreign_rules(self, family: int):
        return list(self.foreign)

    def remembered_endpoints(self, names) -> dict[str, dict[str, str]]:
        return {n: dict(self.endpoints[n]) for n in names if n in self.endpoints}

    def remember_endpoints(self, old, new) -> None:
        self.endpoints = {
            **{n: e for n, e in self.endpoints.items() if n not in old},
            **{n: dict(e) for n, e in new.items()},
        }

    def kick(self, ifname: str, peers, echo=None) -> None:
        self.kicked.extend((ifname, p.public_key) for p in peers)

    def apply(self, changes: list[Change], echo=None) -> None:
        for change in changes:
            with self.applying:  # one change at a time, like the kernel's rtnl lock
                self.log.append(str(change))
                echo_change(echo, change)
                self.state = self._apply(self.state, change)

    def _set_private_key(self, name: str, b64: str) -> None:
        """The kernel's rule (netlink.c): skip the SET only if the key equals the stored,
        clamped copy; otherwise store the clamped key and expire every peer's session."""
        stored = self.private_keys.get(name)
        if b64 == stored:
            return
        if stored is not None:
            self.session_resets[name] = self.session_resets.get(name, 0) + 1
        self.private_keys[name] = _kernel_clamp(b64)

    def _apply(self, s: Observed, c: Change) -> Observed:
        if isinstance(c, SetSysctl):
            return replace(s, sysctls={**s.sysctls, c.key: c.value})
        if isinstance(c, CreateDevice):
            return replace(s, wg={**s.wg, c.name: WgDeviceState(c.name, None, 0, {})})
        if isinstance(c, ConfigureDevice):
            dev = s.wg[c.name]
            if c.private_key is None:
                return replace(s, wg={**s.wg, c.name: replace(dev, listen_port=c.listen_port)})
            self._set_private_key(c.name, c.private_key.reveal())
            return replace(
                s,
                wg={
                    **s.wg,
                    c.name: replace(
                        dev, public_key=public_of(c.private_key), listen_port=c.listen_port
                    ),
                },
            )
        if isinstance(c, (UpsertPeer, RemovePeer)):
            dev = s.wg[c.device]
            peers = dict(dev.peers)
            if isinstance(c, UpsertPeer):
                p = c.peer
                old = peers.get(p.public_key)
                endpoint = p.endpoint or (old.endpoint if old else None)
                peers[p.public_key] = WgPeerState(
                    p.public_key, p.psk, p.allowed_ips, p.keepalive, endpoint
                )
            else:
                peers.pop(c.public_key, None)
            return replace(s, wg={**s.wg, c.device: replace(dev, peers=peers)})
        if isinstance(c, SetLink):
            return replace(
                s, links={**s.links, c.spec.name: ObservedLink(c.spec.name, c.spec.mtu, True)}
            )
        if isinstance(c, (AddAddress, DelAddress)):
            op = s.addresses | {c.spec} if isinstance(c, AddAddress) else s.addresses - {c.spec}
            return replace(s, addresses=op)
        if isinstance(c, ReplaceNft):
            return replace(s, nft=ObservedNft(True, c.spec.digest, c.spec.elements, vouched=True))
        if isinstance(c, AddTc):
            kept_tc = {t for t in s.tc if (t.dev, t.hook) != (c.spec.dev, c.spec.hook)}
            return replace(s, tc=frozenset(kept_tc | {c.spec}))
        if isinstance(c, DelTc):
            tc_key = (c.spec.dev, c.spec.hook)
            return replace(s, tc=frozenset(t for t in s.tc if (t.dev, t.hook) != tc_key))
        if isinstance(c, DeleteNft):
            return replace(s, nft=ObservedNft(False))
        if isinstance(c, AddRoute):
            key = (c.spec.family, c.spec.table, c.spec.dst, c.spec.metric)
            kept = {r for r in s.routes if (r.family, r.table, r.dst, r.metric) != key}
            return replace(s, routes=frozenset(kept | {c.spec}))
        if isinstance(c, DelRoute):
            return replace(s, routes=s.routes - {c.spec})
        if isinstance(c, (AddRule, DelRule)):
            rules = s.rules | {c.spec} if isinstance(c, AddRule) else s.rules - {c.spec}
            return replace(s, rules=rules)
        if isinstance(c, DeleteDevice):
            self.private_keys.pop(c.name, None)
            wg = {k: v for k, v in s.wg.items() if k != c.name}
            links = {k: v for k, v in s.links.items() if k != c.name}
            addrs = frozenset(a for a in s.addresses if a.ifname != c.name)
            routes = frozenset(r for r in s.routes if r.dev != c.name)
            tcs = frozenset(t for t in s.tc if t.dev != c.name)
            return replace(s, wg=wg, links=links, addresses=addrs, routes=routes, tc=tcs)
        raise AssertionError(f"fake cannot apply {c}")


def _kernel_clamp(b64: str) -> str:
    """curve25519_clamp_secret(), written out here rather than taken from wggw.keys, so the
    fake checks wggw's clamping instead of repeating it."""
    raw = bytearray(base64.b64decode(b64))
    raw[0] &= 248
    raw[31] = (raw[31] & 127) | 64
    return base64.b64encode(bytes(raw)).decode()

"""The real host as one object: observe what wggw owns and apply planned changes,
through the WireGuard backend, netlink and nftables. `reconcile` talks only to this
interface, so a fake (backends/fake.py) can stand in for it in pure tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from itertools import groupby

from wggw.backends import announce, endpoint_file, nft, parallel, sysctl, tc
from wggw.backends.netlink import dump as nldump
from wggw.backends.netlink import routeget
from wggw.backends.netlink import rtnl as netlink
from wggw.core import desired as desired_mod
from wggw.core.desired import RouteSpec
from wggw.core.endpoints import KICK_KEEPALIVE
from wggw.core.errors import BackendError
from wggw.core.hostfacts import HostFacts
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
    ObservedNft,
    RemovePeer,
    ReplaceNft,
    SetLink,
    SetSysctl,
    UpsertPeer,
)
from wggw.core.planscript import echo_change
from wggw.core.wgtypes import WgDeviceState

Echo = Callable[[str], None] | None


NETLINK_BATCHED = (AddAddress, DelAddress, AddRoute, DelRoute, AddRule, DelRule)


def peer_device(change: Change) -> str | None:
    """Consecutive peer changes of one device are applied as one transaction."""
    return change.device if isinstance(change, (UpsertPeer, RemovePeer)) else None


def _group(change: Change) -> tuple[str, str] | None:
    """Consecutive changes of one group go together: a device's peers as one UAPI/genetlink
    transaction, addresses/routes/rules as one netlink batch (in plan order)."""
    device = peer_device(change)
    if device is not None:
        return ("peers", device)
    return ("netlink", "") if isinstance(change, NETLINK_BATCHED) else None


def _netlink_item(change: Change) -> tuple[str, object]:
    if isinstance(change, (AddRoute, AddAddress)):
        return ("replace" if change.replace else "add", change.spec)
    assert isinstance(change, (DelRoute, DelAddress, AddRule, DelRule)), change  # _group's kinds
    return ("add" if isinstance(change, AddRule) else "del", change.spec)


class RealSystem:
    def __init__(self, wg) -> None:
        self.wg = wg
        self.listings: list = []  # nft tables listed right after their load, not recorded yet
        # The table as listed right after this apply's successful load, for its verify
        # (`observe_host` takes it once): seen after the change, as a verify must.
        self.listed: ObservedNft | None = None

    def line(self, change: Change) -> str:
        """The `[#]` line of a change as this host will carry it out: with wireguard-go a
        device is a process (and its tun link), not an `ip link add ... type wireguard`."""
        if self.wg.kind == "userspace" and isinstance(change, CreateDevice):
            return f"[#] wireguard-go {change.name}"
        if self.wg.kind == "userspace" and isinstance(change, DeleteDevice):
            return f"[#] kill wireguard-go {change.name} (its tun link goes with it)"
        return str(change)

    def facts(self) -> HostFacts:
        return netlink.observe_facts()

    def observe(self) -> Observed:
        """Everything wggw owns; the devices are read on a thread while the host is read
        here (their reads wait mostly on other processes: parallel.py)."""
        names = self.wg.list_devices()
        devices, host = parallel.both(
            lambda: self.observe_devices(names), lambda: self.observe_host(names)
        )
        return replace(host, wg=devices)

    def observe_devices(self, names: list[str] | None = None) -> dict[str, WgDeviceState]:
        """The WireGuard devices' state (peers and all), by device name."""
        devices = {}
        for name in self.wg.list_devices() if names is None else names:
            state = self.wg.observe(name)
            if state is not None:
                devices[name] = state
        return devices

    def observe_host(self, names: list[str] | None = None) -> Observed:
        """Everything `observe` reads except the devices' WireGuard state (wg is empty)."""
        self.settle()  # an nft table loaded by `apply(..., settle=False)` is on the record first
        names = self.wg.list_devices() if names is None else names
        return Observed(
            wg={},
            links=netlink.observe_links(names),
            addresses=netlink.observe_addresses(names),
            routes=netlink.observe_routes(),
            rules=netlink.observe_rules(),
            nft=self._take_listed() or nft.observe(),
            sysctls=sysctl.read(desired_mod.SYSCTL_FORWARD.values()),
            tc=tc.observe(nldump.iter_names()),
        )

    def observe_peers(self, ifname: str, keys) -> WgDeviceState | None:
        """The device with only the peers of `keys` (None if there is no such device)."""
        return self.wg.observe(ifname, only=keys)

    def has_routes(self, routes: list[RouteSpec]) -> bool:
        """Are all these routes in the kernel? (Reads only their tables.)"""
        seen: set[RouteSpec] = set()
        for table in {r.table for r in routes}:
            seen |= netlink.observe_routes(table)
        return all(r in seen for r in routes)

    def restore_sysctls(self) -> list[SetSysctl]:
        """`down`: give back the forwarding settings wggw changed (see backends/sysctl.py)."""
        return [SetSysctl(key, value) for key, value in sysctl.restore()]

    def check_nft(self, text: str) -> None:
        nft.load(text, check_only=True)

    def route_answers(self, probes):
        """How the kernel routes each probe packet (core/paths.py)."""
        return routeget.route_answers(probes)

    def foreign_rules(self, family: int):
        return routeget.foreign_rules(family)

    def remembered_endpoints(self, names) -> dict[str, dict[str, str]]:
        return endpoint_file.load(names)

    def remember_endpoints(self, old, new) -> None:
        endpoint_file.save(old, new)

    def kick(self, ifname: str, peers, echo: Echo = None) -> None:
        """Have the device start handshakes with `peers` now (core/endpoints.py)."""
        for peer in peers:
            if echo:
                echo(
                    f"[#] wg set {ifname} peer {peer.public_key} persistent-keepalive "
                    f"{KICK_KEEPALIVE} then off  # handshake now"
                )
        self.wg.kick(ifname, peers)

    def apply(self, changes: list[Change], echo: Echo = None, settle: bool = True) -> None:
        """Apply `changes` in order. The nft table loaded here is listed right after its
        load and recorded at the end; with `settle=False` (and no error) that record is left
        to `settle()`, so that what comes next (a device's peers) need not wait for it."""
        added: list[AddAddress] = []  # addresses whose netlink batch went through
        done = False
        try:
            self._apply(changes, echo, self.listings, added)
            done = True
        finally:
            # Egress addresses this apply added (also if a later step failed: the next
            # round sees them present and would never announce them).
            egress = [a.spec for a in added if a.spec.egress]
            announce.announce([(a.ifname, a.cidr.split("/")[0]) for a in egress], echo)
            if settle or not done:
                self._record(done)

    def settle(self) -> None:
        """Record the nft tables that `apply(..., settle=False)` loaded (before observing)."""
        self._record(True)

    def _record(self, raising: bool) -> None:
        listing, self.listings = self.listings, []
        for started in listing:
            try:
                listed = nft.record_loaded(started)
            except BackendError:
                if raising:  # else the apply's own failure is the one to report
                    raise
            else:
                # Only a whole apply's: after a failed one the next look may come much later.
                self.listed = listed if raising else None

    def _take_listed(self) -> ObservedNft | None:
        listed, self.listed = self.listed, None
        return listed

    def _apply(self, changes: list[Change], echo: Echo, listing: list, added: list) -> None:
        with netlink.Netlink() as nl:
            for group, items in groupby(changes, key=_group):
                batch = list(items)
                for change in batch if echo is not None else ():  # lines cost ~20 us each
                    echo_change(echo, change, self.line(change))
                if group is not None and group[0] == "peers":
                    self.wg.set_peers(
                        group[1],
                        [c.peer for c in batch if isinstance(c, UpsertPeer)],
                        [c.public_key for c in batch if isinstance(c, RemovePeer)],
                    )
                elif group is not None:
                    nl.batch([_netlink_item(c) for c in batch])
                    added.extend(c for c in batch if isinstance(c, AddAddress))
                else:
                    for change in batch:
                        if isinstance(change, ReplaceNft):
                            nft.load(change.spec.text)
                            listing.append(nft.start_listing())
                        else:
                            self._apply_one(change, nl)

    def apply_peers(self, changes: list[Change], echo: Echo = None) -> None:
        """Peer changes of one device as one WireGuard transaction, without the rtnetlink
        socket and link dump that `apply` opens (the agent's one-peer delta)."""
        send = self.prepare_peers(changes)
        for change in changes:
            echo_change(echo, change, self.line(change))
        send()

    def prepare_peers(self, changes: list[Change]) -> Callable[[], None]:
        """Peer changes (`apply_peers`'s) built into their devices' requests now, sent when
        the returned function is called: a cold apply builds 10,000 peers' request while the
        head of its plan goes out. Touches nothing until called; prints nothing."""
        requests = []
        for device, items in groupby(changes, key=peer_device):
            batch = list(items)
            if device is None:
                raise BackendError(f"not a peer change: {batch[0].describe()}")
            requests.append(
                self.wg.prepare_peers(
                    device,
                    [c.peer for c in batch if isinstance(c, UpsertPeer)],
                    [c.public_key for c in batch if isinstance(c, RemovePeer)],
                )
            )

        def send() -> None:
            for request in requests:
                self.wg.send_peers(request)

        return send

    def _apply_one(self, change: Change, nl: netlink.Netlink) -> None:
        """A change outside the two batched groups (addresses, routes and rules always go
        out as one netlink batch, peers as one WireGuard transaction)."""
        wg = self.wg
        if isinstance(change, SetSysctl):
            sysctl.write(change.key, change.value)
        elif isinstance(change, CreateDevice):
            wg.create(change.name)
        elif isinstance(change, ConfigureDevice):
            wg.configure(change.name, change.private_key, change.listen_port)
        elif isinstance(change, SetLink):
            nl.set_link(change.spec)
        elif isinstance(change, AddTc):
            tc.install(nl._idx(change.spec.dev, f"tc filter on {change.spec.dev}"), change.spec)
        elif isinstance(change, DelTc):
            index = nl.index.get(change.spec.dev)
            if index is not None:  # a device that is gone took its filters with it
                tc.remove(index, change.spec)
                tc.remove_empty_clsact(index, change.spec.dev)
        elif isinstance(change, DeleteNft):
            nft.delete()
        elif isinstance(change, DeleteDevice):
            wg.delete(change.name)
            endpoint_file.forget(change.name)
        else:  # pragma: no cover - a new change type without an applier is a bug
            raise BackendError(f"no applier for {type(change).__name__}")

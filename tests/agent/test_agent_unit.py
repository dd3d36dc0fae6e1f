"""The agent's parts without a kernel: back-off arithmetic, the netlink event decoder on
hand-built messages, sd_notify datagrams, the one-agent lock, the control socket round trip,
log lines, and the CLI's refusal of bad options."""

from __future__ import annotations

import io
import json
import os
import socket
import struct
import threading

import pytest

from wggw.agent import sdnotify
from wggw.agent.backoff import Backoff, kind_of
from wggw.agent.control import ControlServer
from wggw.agent.logs import Log
from wggw.agent.singleton import AgentLock
from wggw.backends.netlink import events as ev
from wggw.core.errors import LockBusyError
from wggw.core.plan import AddRule, ReplaceNft
from wggw.ops import agentclient


def test_backoff_bounds_repairs_per_minute_and_recovers() -> None:
    b = Backoff(limit=3, base=1.0, cap=8.0)
    t = 100.0
    for _ in range(3):
        assert b.allowed("rule", t)
        b.record("rule", t)
        t += 0.1
    assert b.contested(t) == set() and b.allowed("rule", t)
    b.record("rule", t)  # the 4th in a minute: pause 1 s
    assert b.contested(t) == {"rule"}
    assert not b.allowed("rule", t + 0.5) and b.allowed("rule", t + 1)
    b.record("rule", t + 1)  # the 5th: pause 2 s, then 4, 8, capped at 8
    assert not b.allowed("rule", t + 2.9) and b.allowed("rule", t + 3.0)
    for i in range(5):
        b.record("rule", t + 3 + i)
    assert b.when({"rule"}, t + 7) == pytest.approx(t + 7 + 8)
    assert b.when({"rule", "nft"}, t + 7) == t + 7  # one of them may go now
    assert b.allowed("nft", t)  # other kinds are not affected
    assert b.contested(t + 200) == set()  # a quiet minute later: no longer contested


def test_kinds() -> None:
    assert kind_of(AddRule(None)) == "rule" and kind_of(ReplaceNft(None)) == "nft"


def _nlmsg(mtype: int, body: bytes) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), mtype, 0, 0, 0) + body


def _attr(atype: int, payload: bytes) -> bytes:
    pad = (4 - len(payload) % 4) % 4
    return struct.pack("=HH", 4 + len(payload), atype) + payload + b"\0" * pad


def test_decode_rtnetlink_link_rule_route() -> None:
    link = _nlmsg(17, struct.pack("=BxHiII", 0, 1, 7, 0, 0) + _attr(3, b"uplink0\0"))
    rule = _nlmsg(
        33,
        struct.pack("=BBBBBBBBI", 2, 0, 0, 0, 0, 0, 0, 1, 0)
        + _attr(6, struct.pack("=I", 10014))
        + _attr(15, struct.pack("=I", 60000)),
    )
    route = _nlmsg(24, struct.pack("=BBBBBBBBI", 2, 0, 0, 0, 254, 3, 0, 1, 0))
    got = ev.decode(link + rule + route, ev.NETLINK_ROUTE)
    assert got == [
        ev.Event("link", True, ifindex=7, ifname="uplink0"),
        ev.Event("rule", True, table=60000, priority=10014),
        ev.Event("route", False, table=254),
    ]


def test_decode_nftables_table_and_generation() -> None:
    table = _nlmsg((10 << 8) | 2, struct.pack("=BBH", 1, 0, 0) + _attr(1, b"wggw\0"))
    elem = _nlmsg((10 << 8) | 12, struct.pack("=BBH", 1, 0, 0) + _attr(1, b"other\0"))
    gen = _nlmsg(
        (10 << 8) | 15,
        struct.pack("=BBH", 0, 0, 0)
        + _attr(1, struct.pack(">I", 9))
        + _attr(2, struct.pack(">I", 4242)),
    )
    got = ev.decode(table + elem + gen, ev.NETLINK_NETFILTER)
    assert got == [
        ev.Event("table", True, nft=True, nft_table="wggw"),
        ev.Event("element", False, nft=True, nft_table="other"),
        ev.Event("generation", nft=True, pid=4242),
    ]


def test_decode_ignores_other_messages_and_truncation() -> None:
    assert ev.decode(_nlmsg(3, b"\0" * 4), ev.NETLINK_ROUTE) == []
    assert ev.decode(b"\x01\x02", ev.NETLINK_ROUTE) == []


def test_sdnotify_sends_datagrams_and_is_a_no_op_without_systemd(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert sdnotify.notify("READY=1")
        assert sock.recv(100) == b"READY=1"
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert sdnotify.watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert sdnotify.watchdog_interval() is None


def test_second_agent_lock_is_refused_and_released() -> None:
    first = AgentLock().acquire()
    try:
        assert oct(first.path.stat().st_mode & 0o777) == "0o600"
        busy = rf"another wggw agent is running \(pid {os.getpid()}"
        with pytest.raises(LockBusyError, match=busy):
            AgentLock().acquire()
    finally:
        first.release()
    assert not first.path.exists()
    AgentLock().acquire().release()


def test_control_socket_round_trip_and_no_agent() -> None:
    assert agentclient.request({"op": "ping"}) is None  # nobody listens
    server = ControlServer()
    try:
        assert oct(server.path.stat().st_mode & 0o777) == "0o600"
        seen: list[dict] = []

        def handle(req: dict) -> dict:
            seen.append(req)
            return {"ok": True, "lines": ["[#] wg set wg0 peer K (hidden)"]}

        thread = threading.Thread(target=lambda: server.serve_one(handle) or None)
        lines: list[str] = []
        import select

        store = type("S", (), {"state_dir": "/var/lib/wggw-test"})()
        client = threading.Thread(
            target=lambda: lines.append(
                agentclient.apply_peer_via_agent(store, "acme", "p1", {"K"}, lines.append)
            )
        )
        client.start()
        select.select([server], [], [], 5)
        thread.start()
        thread.join(5)
        client.join(5)
        assert seen == [
            {
                "op": "peer",
                "store": "/var/lib/wggw-test",
                "tenant": "acme",
                "peer": "p1",
                "keys": ["K"],
            }
        ]
        assert lines == ["[#] wg set wg0 peer K (hidden)", True]
    finally:
        server.close()
    assert not server.path.exists()


def test_log_lines_text_and_json() -> None:
    out = io.StringIO()
    Log("text", out)("repair", kind="rule", change="ip rule add pref 1")
    Log("json", out)("repair", kind="rule", n=2)
    text, js = out.getvalue().splitlines()
    assert text.endswith(' repair kind=rule change="ip rule add pref 1"')
    assert json.loads(js)["event"] == "repair" and json.loads(js)["n"] == 2


@pytest.mark.parametrize(
    "args, field",
    [
        (["--log-format", "xml"], "log-format"),
        (["--resync", "0"], "resync"),
        (["--metrics-listen", "localhost"], "metrics-listen"),
        (["--max-repairs", "0"], "max-repairs"),
    ],
)
def test_agent_refuses_bad_options(gw, args, field) -> None:
    result = gw("agent", *args, code=2)
    assert f"wggw: error: {field}:" in result.output


def test_an_agent_of_another_store_leaves_the_change_to_the_cli() -> None:
    server = ControlServer()
    try:
        thread = threading.Thread(
            target=lambda: server.serve_one(
                lambda req: {"ok": False, "other_store": True, "error": "another store"}
            )
        )
        result: list = []
        store = type("S", (), {"state_dir": "/elsewhere"})()
        client = threading.Thread(
            target=lambda: result.append(
                agentclient.apply_peer_via_agent(store, "acme", None, {"K"})
            )
        )
        client.start()
        import select

        select.select([server], [], [], 5)
        thread.start()
        thread.join(5)
        client.join(5)
        assert result == [False]
    finally:
        server.close()


def test_which_kernel_events_wake_the_agent() -> None:
    from wggw.agent.loop import Agent

    agent = Agent.__new__(Agent)  # only the filter: no store, no backend
    agent.watched, agent.watched_index, agent.reasons = {"uplink0", "wg0"}, {7}, set()
    E = ev.Event
    wake = [
        E("rule", priority=10014),
        E("route", table=60000),
        E("route", table=254),
        E("link", True, ifname="wg0"),
        E("address", ifindex=7),
        E("overrun"),
    ]
    sleep = [
        E("rule", priority=100),
        E("route", table=100),
        E("link", ifname="docker0"),
        E("address", ifindex=9),
        E("table", nft=True, nft_table="filter"),
        E("generation", nft=True, pid=1),
    ]
    assert all(agent._relevant(e) for e in wake)
    assert not any(agent._relevant(e) for e in sleep) and "nft" not in agent.reasons
    assert agent._relevant(E("element", nft=True, nft_table="wggw")) and "nft" in agent.reasons

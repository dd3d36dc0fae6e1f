"""The announcement frames of backends/announce.py byte for byte, and its failure mode: a
send that cannot happen is a warning, never an exception (the apply that added the address
must not fail for it). The packets on a real link: tests/netns/test_egress_announce.py."""

from __future__ import annotations

import threading
import time

from wggw.backends import announce

MAC = bytes.fromhex("020000005301")


def test_gratuitous_arp_is_a_broadcast_request_with_sender_and_target_the_address() -> None:
    frame = announce.garp_frame(MAC, "203.0.113.10")
    ip = bytes([203, 0, 113, 10])
    assert frame[:14] == b"\xff" * 6 + MAC + b"\x08\x06"
    arp = frame[14:]
    assert arp[:8] == bytes.fromhex("0001 0800 06 04 0001")  # ethernet/IPv4, request
    assert arp[8:14] == MAC and arp[14:18] == ip  # sender: the new owner
    assert arp[18:24] == b"\x00" * 6 and arp[24:28] == ip  # target: the address itself
    assert len(frame) == 42


def test_neighbour_advertisement_overrides_and_carries_the_mac() -> None:
    msg = announce.na_message(MAC, "2001:db8:ffff::10")
    assert msg[0] == 136 and msg[1] == 0  # neighbour advertisement
    assert msg[4] == 0x20  # override only: not solicited (to all nodes), not a router
    assert msg[8:24] == bytes.fromhex("20010db8ffff00000000000000000010")
    assert msg[24:] == b"\x02\x01" + MAC  # target link-layer address option


def test_a_failed_announcement_is_a_warning_not_an_error() -> None:
    lines: list[str] = []
    lock = threading.Lock()

    def echo(line: str) -> None:
        with lock:
            lines.append(line)

    before = set(threading.enumerate())
    announce.announce([("wggw-no-such0", "203.0.113.10"), ("wggw-no-such0", "2001:db8::1")], echo)
    for thread in set(threading.enumerate()) - before:  # the repeat, 100 ms later
        thread.join(timeout=5)
    warnings = [ln for ln in lines if ln.startswith("warning: could not announce")]
    assert len(warnings) == 2 * announce.COUNT, lines  # one per family and round
    assert any("203.0.113.10 on wggw-no-such0" in ln for ln in warnings)
    assert any("2001:db8::1 on wggw-no-such0" in ln for ln in warnings)


def test_many_failures_are_one_line_per_cause() -> None:
    lines: list[str] = []
    ips = [f"203.0.113.{i}" for i in range(1, 101)]
    announce._send_all([("wggw-no-such0", ip) for ip in ips], lines.append)
    assert len(lines) == 1, lines
    assert "203.0.113.1, 203.0.113.2, 203.0.113.3 and 97 more on wggw-no-such0" in lines[0]


def test_the_announcement_is_repeated_from_a_thread_that_outlives_the_caller(monkeypatch) -> None:
    sent: list[tuple[float, threading.Thread]] = []
    monkeypatch.setattr(
        announce,
        "_send_all",
        lambda a, e: sent.append((time.monotonic(), threading.current_thread())),
    )
    announce.announce([("uplink0", "203.0.113.10")], None)
    assert len(sent) == 1 and sent[0][1] is threading.main_thread()  # the first: at once
    repeat = [t for t in threading.enumerate() if isinstance(t, threading.Timer)]
    assert repeat and not any(t.daemon for t in repeat)  # a CLI's exit waits for it
    for t in repeat:
        t.join(timeout=5)
    assert len(sent) == announce.COUNT
    assert sent[1][0] - sent[0][0] >= announce.INTERVAL * 0.9

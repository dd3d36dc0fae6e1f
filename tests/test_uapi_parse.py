"""Parsing a wireguard-go `get=1` response (pure): every field, peer filtering, errors, and
the planner's comparison of allowed IPs as observed."""

from __future__ import annotations

import pytest

from wggw.backends.wg_uapi import BlockMemo, parse_get
from wggw.core import keys
from wggw.core.wgtypes import WgPeerSpec, WgPeerState

PRIV, PSK = keys.generate_private(), keys.generate_psk()
A, B = keys.public_of(keys.generate_private()), keys.public_of(keys.generate_private())


def _response(errno: int = 0) -> str:
    return (
        "\n".join(
            [
                f"private_key={PRIV.hex()}",
                "listen_port=51820",
                f"public_key={keys.key_hex(A)}",
                f"preshared_key={PSK.hex()}",
                "protocol_version=1",
                "endpoint=198.51.100.2:40000",
                "last_handshake_time_sec=1700000000",
                "last_handshake_time_nsec=500000000",
                "tx_bytes=10",
                "rx_bytes=20",
                "persistent_keepalive_interval=25",
                "allowed_ip=10.0.0.3/32",
                "allowed_ip=fd00::3/128",
                f"public_key={keys.key_hex(B)}",
                "preshared_key=" + "0" * 64,
                "persistent_keepalive_interval=0",
                "allowed_ip=10.0.0.4/32",
                f"errno={errno}",
            ]
        )
        + "\n\n"
    )


def test_every_field_of_device_and_peers():
    dev = parse_get("wg0", _response())
    assert dev.public_key == keys.public_of(PRIV) and dev.listen_port == 51820
    a, b = dev.peers[A], dev.peers[B]
    assert a.psk == PSK and a.keepalive == 25 and a.endpoint == "198.51.100.2:40000"
    assert a.allowed_ips == ("10.0.0.3/32", "fd00::3/128") and (a.rx_bytes, a.tx_bytes) == (20, 10)
    assert a.last_handshake == pytest.approx(1700000000.5)
    assert (
        b.psk is None
        and b.keepalive is None
        and b.allowed_ips == ("10.0.0.4/32",)
        and b.last_handshake == 0.0
    )


def test_only_the_asked_peers_are_parsed():
    dev = parse_get("wg0", _response(), only=[B])
    assert list(dev.peers) == [B] and dev.public_key == keys.public_of(PRIV)
    assert parse_get("wg0", _response(), only=[]).peers == {}


def test_error_reply_and_empty_device():
    with pytest.raises(OSError, match="errno=-22"):
        parse_get("wg0", _response(-22))
    dev = parse_get("wg0", "errno=0\n\n")
    assert dev.public_key is None and dev.listen_port == 0 and dev.peers == {}


def test_allowed_ips_compared_as_text_then_normalised():
    seen = WgPeerState(A, PSK, ("fd00:0:0:0::3/128", "10.0.0.3/32"), 25)
    assert seen.matches(WgPeerSpec(A, PSK, ("10.0.0.3/32", "fd00::3/128"), 25))
    assert not seen.matches(WgPeerSpec(A, PSK, ("10.0.0.4/32", "fd00::3/128"), 25))
    assert not seen.matches(WgPeerSpec(A, None, ("10.0.0.3/32", "fd00::3/128"), 25))
    assert not seen.matches(WgPeerSpec(A, PSK, ("10.0.0.3/32", "fd00::3/128"), None))


def test_memo_reuses_unchanged_blocks_and_parses_edited_ones():
    """A full dump parsed with the device's memo: a peer whose block is the same text gives
    the very state of the last dump; an edited block (here A's allowed IPs, PSK, counters)
    is parsed again, a removed peer is gone and forgotten, an added one parsed."""
    memo = BlockMemo()
    first = parse_get("wg0", _response(), memo=memo)
    assert first == parse_get("wg0", _response())  # the same result as without a memo
    again = parse_get("wg0", _response(), memo=memo)
    assert again.peers[A] is first.peers[A] and again.peers[B] is first.peers[B]

    other_psk = keys.generate_psk()
    edited = (
        _response()
        .replace("allowed_ip=10.0.0.3/32", "allowed_ip=10.0.0.9/32")
        .replace(f"preshared_key={PSK.hex()}", f"preshared_key={other_psk.hex()}")
    )
    dev = parse_get("wg0", edited, memo=memo)
    assert dev.peers[A].allowed_ips == ("10.0.0.9/32", "fd00::3/128")
    assert dev.peers[A].psk == other_psk and dev.peers[B] is first.peers[B]
    counters = _response().replace("rx_bytes=20", "rx_bytes=21")
    assert parse_get("wg0", counters, memo=memo).peers[A].rx_bytes == 21

    without_b = _response().split(f"public_key={keys.key_hex(B)}")[0] + "errno=0\n\n"
    assert list(parse_get("wg0", without_b, memo=memo).peers) == [A]
    assert len(memo.states) == 1  # only the current peers are kept


def test_memo_leaves_a_repeated_peer_to_the_merging_parse():
    """The protocol never repeats a peer; if a device did, its lines are merged as before."""
    block = "\n".join(_response().split("\n")[2:13])  # A's block
    again = block.replace("10.0.0.3/32", "10.0.0.7/32")
    twice = _response().replace("errno=0", again + "\nerrno=0")
    memo = BlockMemo()
    dev = parse_get("wg0", twice, memo=memo)
    assert dev == parse_get("wg0", twice) and "10.0.0.7/32" in dev.peers[A].allowed_ips


def test_a_match_is_remembered_only_for_the_same_pair():
    seen = WgPeerState(A, PSK, ("10.0.0.3/32",), 25)
    want = WgPeerSpec(A, PSK, ("10.0.0.3/32",), 25)
    assert seen.matches(want) and seen.matches(want)  # the second from the memo
    assert not seen.matches(WgPeerSpec(A, PSK, ("10.0.0.4/32",), 25))  # another spec: compared
    assert seen == WgPeerState(A, PSK, ("10.0.0.3/32",), 25)  # the memo is not a field
    assert hash(seen) == hash(WgPeerState(A, PSK, ("10.0.0.3/32",), 25))


def _fresh(spec: WgPeerSpec) -> list[str]:
    """What wireguard-go 0.0.2023 prints for `spec` right after setting it (see the lab's
    `get=1` after a `set=1`): fields in this order, allowed IPs as sent."""
    psk = spec.psk.hex() if spec.psk is not None else "0" * 64
    return [
        f"public_key={keys.key_hex(spec.public_key)}",
        f"preshared_key={psk}",
        "protocol_version=1",
        "last_handshake_time_sec=0",
        "last_handshake_time_nsec=0",
        "tx_bytes=0",
        "rx_bytes=0",
        f"persistent_keepalive_interval={spec.keepalive or 0}",
        *(f"allowed_ip={c}" for c in spec.allowed_ips),
    ]


def test_expected_fresh_blocks_parse_to_the_states_the_memo_was_given():
    """`BlockMemo.expect` must hold for each spec exactly the state its block parses to: the
    verify of a cold apply takes those states without parsing. Checked against the parse
    (no memo) for a PSK, none, an all-zero one, keepalive, IPv6 and several allowed IPs; a
    peer with an endpoint is not expected (shown as resolved), nor is a block that differs."""
    zero = keys.Secret("A" * 43 + "=")
    specs = [
        WgPeerSpec(A, PSK, ("10.0.0.3/32",)),
        WgPeerSpec(B, None, ("10.0.0.10/32", "10.0.0.9/32", "fd00::4/128"), 25),
        WgPeerSpec(keys.public_of(keys.generate_private()), zero, ("fd00::5/128",)),
        WgPeerSpec(keys.public_of(keys.generate_private()), PSK, ("10.0.0.6/32",), None, "[::1]:1"),
    ]
    lines = [f"private_key={PRIV.hex()}", "listen_port=51820"]
    for spec in specs:
        lines += _fresh(spec)
    text = "\n".join(lines + ["errno=0"]) + "\n\n"
    memo = BlockMemo()
    memo.expect(specs)
    assert len(memo.states) == 3  # not the one with an endpoint
    dev = parse_get("wg0", text, memo=memo)
    assert dev == parse_get("wg0", text)  # the same states as parsed
    for spec in specs[:3]:
        assert dev.peers[spec.public_key] in memo.states.values()
        assert dev.peers[spec.public_key].matches(spec)
    assert dev.peers[specs[2].public_key].psk is None  # all zeros: no PSK, as parsed

    moved = text.replace("rx_bytes=0", "rx_bytes=1", 1)  # A has had traffic since
    memo.expect(specs)
    assert parse_get("wg0", moved, memo=memo).peers[A].rx_bytes == 1

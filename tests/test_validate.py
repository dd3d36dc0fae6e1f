"""Parsers of operator input (pure)."""

from __future__ import annotations

import pytest

from wggw.core import validate
from wggw.core.errors import ValidationError

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    "text,seconds",
    [
        ("30d", 30 * 86400),
        ("12h", 43200),
        ("90m", 5400),
        ("1w2d", 9 * 86400),
        ("45s", 45),
        ("2D", 2 * 86400),
    ],
)
def test_duration(text, seconds):
    assert validate.duration("x", text) == seconds


@pytest.mark.parametrize("text", ["", "0d", "d", "1y", "-1d", "1.5h"])
def test_bad_duration(text):
    with pytest.raises(ValidationError):
        validate.duration("x", text)


def test_when():
    assert validate.when("expires", "30d", NOW) == NOW + 30 * 86400
    assert validate.when("expires", "2099-01-01", NOW) == 4070908800.0
    assert validate.when("expires", "2099-01-01T01:00:00+01:00", NOW) == 4070908800.0
    assert validate.when("expires", "2099-01-01T00:00:00Z", NOW) == 4070908800.0
    with pytest.raises(ValidationError, match="in the past"):
        validate.when("expires", "2020-01-01", NOW)


@pytest.mark.parametrize(
    "text,normal",
    [
        ("vpn.example.com:51820", "vpn.example.com:51820"),
        ("192.0.2.1:1", "192.0.2.1:1"),
        ("[2001:DB8::1]:51820", "[2001:db8::1]:51820"),
        ("host:0051820", "host:51820"),
    ],
)
def test_endpoint(text, normal):
    assert validate.endpoint(text) == normal


def test_keepalive_zero_means_off():
    assert validate.keepalive(0) is None and validate.keepalive(25) == 25


def test_peer_ref():
    assert validate.peer_ref("acme/alice") == ("acme", "alice")
    with pytest.raises(ValidationError) as e:
        validate.peer_ref("acme")
    assert e.value.field == "peer"


def test_cidr_rejects_non_unicast():
    for bad in ("224.0.0.0/24", "127.0.0.0/24", "ff00::/64"):
        with pytest.raises(ValidationError, match="not a usable unicast"):
            validate.cidr("pool", bad)

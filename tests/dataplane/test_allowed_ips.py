"""normalise_allowed_ips (what both WireGuard backends send and compare) gives exactly
ipaddress's canonical form, whether its IPv4 fast path or ipaddress itself decided."""

from __future__ import annotations

import ipaddress

import pytest

from wggw.backends.wireguard import _canonical_v4, normalise_allowed_ips
from wggw.core.errors import BackendError

CIDRS = [
    "100.64.0.2/32",
    "10.1.0.1/24",  # host bits: masked, as ip_network(strict=False) does
    "10.1.0.0/24",
    "0.0.0.0/0",
    "198.51.100.7",  # no prefix: a host
    "010.1.0.2/32",  # leading zero: not canonical, ipaddress decides (and refuses)
    "10.1.0.2/032",
    "10.1.0.2/33",
    "10.1.2/32",
    "2001:db8::7/128",
    "2001:DB8::1/64",
    "::ffff:192.0.2.1/128",
]


def _reference(cidr: str) -> str | None:
    try:
        return str(ipaddress.ip_network(cidr, strict=False))
    except ValueError:
        return None


@pytest.mark.parametrize("cidr", CIDRS)
def test_each_form_matches_ipaddress(cidr):
    want = _reference(cidr)
    if want is None:
        with pytest.raises(BackendError, match="WireGuard allowed IP"):
            normalise_allowed_ips([cidr])
    else:
        assert normalise_allowed_ips([cidr]) == (want,)


def test_fast_path_takes_only_canonical_ipv4():
    assert _canonical_v4("100.64.0.2/32") == "100.64.0.2/32"
    assert _canonical_v4("10.1.0.0/24") == "10.1.0.0/24"
    for other in ("10.1.0.1/24", "010.1.0.2/32", "10.1.0.2/032", "198.51.100.7", "::1/128"):
        assert _canonical_v4(other) is None


def test_sorted_and_deduplicated():
    cidrs = ["10.1.0.3/32", "10.1.0.2/32", "10.1.0.2/32", "2001:db8::2/128", "10.1.0.9/24"]
    assert normalise_allowed_ips(cidrs) == tuple(sorted({_reference(c) for c in cidrs}))

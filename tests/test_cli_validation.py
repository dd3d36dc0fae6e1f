"""Every validation case of the issue: exit code, the one-line message naming the field,
and a store that did not change (database dump before == after)."""

from __future__ import annotations

import base64
import json

import pytest
from wggwtest import dump

# (command line, message expected on stderr); all exit 2.
CASES = [
    # CIDRs
    (
        ["tenant", "add", "b", "--pool", "10.300.0.0/24", "--egress", "198.51.100.1"],
        "pool: '10.300.0.0/24' is not a valid CIDR",
    ),
    (
        ["tenant", "add", "b", "--pool", "nonsense", "--egress", "198.51.100.1"],
        "pool: 'nonsense' needs a prefix length",
    ),
    (
        ["tenant", "add", "b", "--pool", "10.20.0.1/24", "--egress", "198.51.100.1"],
        "pool: 10.20.0.1/24 has host bits set (did you mean 10.20.0.0/24?)",
    ),
    (
        ["tenant", "add", "b", "--pool", "fd00:20::1/64", "--egress", "2001:db8::20"],
        "pool: fd00:20::1/64 has host bits set",
    ),
    (
        ["tenant", "add", "b", "--pool", "10.20.0.0/31", "--egress", "198.51.100.1"],
        "pool: 10.20.0.0/31 is too small",
    ),
    (
        [
            "tenant",
            "add",
            "b",
            "--pool",
            "10.20.0.0/24",
            "--pool",
            "10.21.0.0/24",
            "--egress",
            "198.51.100.1",
        ],
        "pool: at most one IPv4 value",
    ),
    # overlaps
    (
        ["tenant", "add", "b", "--pool", "10.10.0.0/16", "--egress", "198.51.100.1"],
        "pool: 10.10.0.0/16 overlaps pool 10.10.0.0/24 of tenant acme",
    ),
    (
        ["tenant", "add", "b", "--pool", "10.10.0.128/25", "--egress", "198.51.100.1"],
        "pool: 10.10.0.128/25 overlaps pool 10.10.0.0/24 of tenant acme",
    ),
    (
        ["tenant", "add", "b", "--pool", "fd00:10::/48", "--egress", "2001:db8::20"],
        "pool: fd00:10::/48 overlaps pool fd00:10::/64 of tenant acme",
    ),
    # egress
    (
        ["tenant", "add", "b", "--pool", "10.20.0.0/24", "--egress", "203.0.113.10"],
        "egress: 203.0.113.10 is already the egress of tenant acme",
    ),
    (
        ["tenant", "add", "b", "--pool", "fd00:20::/64", "--egress", "2001:db8::10"],
        "egress: 2001:db8::10 is already the egress of tenant acme",
    ),
    (
        ["tenant", "add", "b", "--pool", "fd00:20::/64", "--egress", "198.51.100.1"],
        "egress: IPv4 egress 198.51.100.1 needs an IPv4 --pool",
    ),
    (
        ["tenant", "add", "b", "--pool", "10.20.0.0/24", "--egress", "2001:db8::20"],
        "egress: IPv6 egress 2001:db8::20 needs an IPv6 --pool",
    ),
    (
        ["tenant", "add", "b", "--pool", "10.20.0.0/24", "--egress", "10.10.0.7"],
        "egress: 10.10.0.7 lies inside pool 10.10.0.0/24 of tenant acme",
    ),
    (
        ["tenant", "add", "b", "--pool", "10.20.0.0/24", "--egress", "10.20.0.9"],
        "egress: 10.20.0.9 lies inside pool 10.20.0.0/24 of tenant b",
    ),
    (
        ["tenant", "add", "b", "--pool", "10.20.0.0/24", "--egress", "not-an-ip"],
        "egress: 'not-an-ip' is not a valid IP address",
    ),
    (
        [
            "tenant",
            "add",
            "b",
            "--pool",
            "10.20.0.0/24",
            "--egress",
            "198.51.100.1",
            "--egress",
            "198.51.100.2",
        ],
        "egress: at most one IPv4 value",
    ),
    (
        [
            "tenant",
            "add",
            "b",
            "--pool",
            "10.20.0.0/24",
            "--egress",
            "198.51.100.1",
            "--via",
            "fe80::1",
        ],
        "via: IPv6 next hop fe80::1 needs an IPv6 --egress",
    ),
    (
        [
            "tenant",
            "add",
            "b",
            "--pool",
            "10.20.0.0/24",
            "--egress",
            "198.51.100.1",
            "--uplink",
            "eth 0",
        ],
        "uplink: 'eth 0' is not a valid network device name",
    ),
    (
        [
            "tenant",
            "add",
            "b",
            "--pool",
            "10.20.0.0/24",
            "--egress",
            "198.51.100.1",
            "--rotate-after",
            "soon",
        ],
        "rotate-after: 'soon' is not a duration",
    ),
    # names
    (
        ["tenant", "add", "acme", "--pool", "10.20.0.0/24", "--egress", "198.51.100.1"],
        "tenant: 'acme' already exists",
    ),
    (
        ["tenant", "add", "bad name", "--pool", "10.20.0.0/24", "--egress", "198.51.100.1"],
        "tenant: 'bad name' is not a safe name",
    ),
    (
        ["tenant", "add", "1tenant", "--pool", "10.20.0.0/24", "--egress", "198.51.100.1"],
        "tenant: '1tenant' is not a safe name",
    ),
    (
        ["tenant", "add", "a" * 16, "--pool", "10.20.0.0/24", "--egress", "198.51.100.1"],
        "is not a safe name",
    ),
    (["peer", "add", "acme/al;ce"], "peer: 'al;ce' is not a safe name"),
    (["peer", "add", "acme-alice"], "peer: expected TENANT/PEER, got 'acme-alice'"),
    (["peer", "add", "acme/a/b"], "peer: 'a/b' is not a safe name"),
    (
        ["interface", "add", "wg0", "--listen-port", "51821", "--endpoint", "h:1"],
        "interface: 'wg0' already exists",
    ),
    (
        ["interface", "add", "wg.0", "--listen-port", "51821", "--endpoint", "h:1"],
        "interface: 'wg.0' is not a safe name",
    ),
    # ports, endpoint, mtu, keepalive
    (
        ["interface", "add", "wg1", "--listen-port", "0", "--endpoint", "h:1"],
        "listen-port: 0 is out of range 1..65535",
    ),
    (
        ["interface", "add", "wg1", "--listen-port", "65536", "--endpoint", "h:1"],
        "listen-port: 65536 is out of range 1..65535",
    ),
    (
        ["interface", "add", "wg1", "--listen-port", "51820", "--endpoint", "h:1"],
        "listen-port: 51820 is already used by interface wg0",
    ),
    (
        ["interface", "add", "wg1", "--listen-port", "51821", "--endpoint", "h:70000"],
        "endpoint: 70000 is out of range 1..65535",
    ),
    (
        ["interface", "add", "wg1", "--listen-port", "51821", "--endpoint", "vpn.example.com"],
        "endpoint: 'vpn.example.com' is not HOST:PORT",
    ),
    (
        ["interface", "add", "wg1", "--listen-port", "51821", "--endpoint", "2001:db8::1:51821"],
        "endpoint: '2001:db8::1:51821' is not HOST:PORT",
    ),
    (
        ["interface", "add", "wg1", "--listen-port", "51821", "--endpoint", "[nope]:51821"],
        "endpoint: 'nope' is not an IPv6 address",
    ),
    (
        ["interface", "add", "wg1", "--listen-port", "51821", "--endpoint", "h_x:1"],
        "endpoint: 'h_x' is not a valid host name",
    ),
    (
        ["interface", "add", "wg1", "--listen-port", "51821", "--endpoint", "h:1", "--mtu", "1279"],
        "mtu: 1279 is out of range 1280..9000",
    ),
    (
        ["interface", "add", "wg1", "--listen-port", "51821", "--endpoint", "h:1", "--mtu", "9001"],
        "mtu: 9001 is out of range 1280..9000",
    ),
    (
        ["peer", "add", "acme/x", "--keepalive", "65536"],
        "keepalive: 65536 is out of range 0..65535",
    ),
    (["peer", "add", "acme/x", "--keepalive", "-1"], "keepalive: -1 is out of range 0..65535"),
    (["peer", "add", "acme/x", "--dns", "1.1.1"], "dns: '1.1.1' is not a valid IP address"),
    (
        ["peer", "add", "acme/x", "--expires", "tomorrow"],
        "expires: 'tomorrow' is neither ISO 8601 nor a duration",
    ),
    (["peer", "add", "acme/x", "--expires", "2001-01-01"], "expires: 2001-01-01 is in the past"),
    # keys
    (["peer", "add", "acme/x", "--public-key", "not*base64"], "public-key: not valid base64"),
    (
        ["peer", "add", "acme/x", "--public-key", base64.b64encode(b"x" * 16).decode()],
        "public-key: must decode to 32 bytes, got 16",
    ),
    # unknown objects
    (["peer", "add", "nope/x"], "tenant: no tenant named 'nope'"),
    (["peer", "show", "acme/nope"], "peer: no peer named acme/nope"),
    (["peer", "remove", "acme/nope"], "peer: no peer named acme/nope"),
    (["peer", "config", "acme/nope"], "peer: no peer named acme/nope"),
    (["peer", "list", "--tenant", "nope"], "tenant: no tenant named 'nope'"),
    (["tenant", "show", "nope"], "tenant: no tenant named 'nope'"),
    (["tenant", "remove", "nope"], "tenant: no tenant named 'nope'"),
    (
        [
            "tenant",
            "add",
            "b",
            "--pool",
            "10.20.0.0/24",
            "--egress",
            "198.51.100.1",
            "--interface",
            "wg9",
        ],
        "interface: no interface named 'wg9'",
    ),
    (["interface", "show", "wg9"], "interface: no interface named 'wg9'"),
    (["interface", "remove", "wg9"], "interface: no interface named 'wg9'"),
    (["export", "wg-quick", "wg9"], "interface: no interface named 'wg9'"),
    # removals that would orphan something
    (
        ["interface", "remove", "wg0"],
        "interface: wg0 still carries tenants acme; remove them first",
    ),
]


@pytest.mark.parametrize("args,message", CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_rejected_with_field_and_store_unchanged(gw, state_dir, args, message):
    gw("peer", "add", "acme/alice")
    before = dump(state_dir)
    result = gw(*args, code=2)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("wggw: error: ")
    assert message in lines[0]
    assert dump(state_dir) == before


def _reject(cli, state_dir, args, message, code=2):
    before = dump(state_dir)
    result = cli(*args, code=code)
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert dump(state_dir) == before


def test_public_key_already_used_by_another_peer(gw, state_dir):
    alice = json.loads(gw("peer", "add", "acme/alice", "--json").stdout)
    _reject(
        gw,
        state_dir,
        ["peer", "add", "acme/bob", "--public-key", alice["public_key"]],
        "public-key: already used by peer acme/alice",
    )


def test_public_key_of_the_gateway_is_refused(gw, state_dir):
    gateway = json.loads(gw("interface", "show", "wg0", "--json").stdout)["public_key"]
    _reject(
        gw,
        state_dir,
        ["peer", "add", "acme/bob", "--public-key", gateway],
        "public-key: is the public key of interface wg0",
    )


def test_duplicate_peer_name(gw, state_dir):
    gw("peer", "add", "acme/alice")
    _reject(gw, state_dir, ["peer", "add", "acme/alice"], "peer: acme/alice already exists")


def test_pool_with_no_free_address_left(gw, state_dir):
    # /30: network .0, gateway .1, one peer .2, broadcast .3
    gw("tenant", "add", "tiny", "--pool", "10.30.0.0/30", "--egress", "198.51.100.30")
    gw("peer", "add", "tiny/one")
    _reject(
        gw,
        state_dir,
        ["peer", "add", "tiny/two"],
        "pool: 10.30.0.0/30 of tenant tiny has no free address left",
    )


def test_tenant_with_peers_is_not_removed_without_force(gw, state_dir):
    gw("peer", "add", "acme/alice")
    _reject(gw, state_dir, ["tenant", "remove", "acme"], "tenant: acme still has 1 peer(s)")
    assert "and 1 peer(s)" in gw("tenant", "remove", "acme", "--force").stdout


def test_interface_must_be_named_when_several_exist(gw, state_dir):
    gw("interface", "add", "wg1", "--listen-port", "51821", "--endpoint", "[2001:db8::1]:51821")
    _reject(
        gw,
        state_dir,
        ["tenant", "add", "b", "--pool", "10.20.0.0/24", "--egress", "198.51.100.1"],
        "interface: required when several interfaces exist (wg0, wg1)",
    )


def test_tenant_needs_an_interface(cli, state_dir):
    cli("init")
    _reject(
        cli,
        state_dir,
        ["tenant", "add", "b", "--pool", "10.20.0.0/24", "--egress", "198.51.100.1"],
        "interface: no interface exists yet",
    )


def test_config_of_a_peer_with_its_own_key_is_an_error(gw, state_dir):
    from wggw.core import keys

    _, public = keys.keypair()
    gw("peer", "add", "acme/own", "--public-key", public)
    _reject(
        gw,
        state_dir,
        ["peer", "config", "acme/own"],
        "peer: acme/own was added with its own public key",
    )


def test_qr_output_needs_png_or_svg(gw, state_dir, tmp_path):
    gw("peer", "add", "acme/alice")
    _reject(
        gw,
        state_dir,
        ["peer", "config", "acme/alice", "--qr", "--output", str(tmp_path / "x.txt")],
        "output: with --qr it must end in .png or .svg",
    )
    assert not (tmp_path / "x.txt").exists()


def test_missing_store_says_run_init(cli, state_dir):
    result = cli("peer", "list", code=2)
    assert (
        result.stderr.strip() == f"wggw: error: no wggw store in {state_dir}; run `wggw init` first"
    )
    assert not state_dir.exists()


def test_shared_state_dir_is_refused(cli, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    from typer.testing import CliRunner

    from wggw.cli.app import app

    result = CliRunner().invoke(app, ["--state-dir", str(shared), "init"])
    assert result.exit_code == 2
    assert "state-dir:" in result.stderr and "accessible by other users" in result.stderr
    assert list(shared.iterdir()) == []

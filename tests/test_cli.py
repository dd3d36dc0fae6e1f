"""The CLI contract: quick start, JSON field names, no secrets in listings, init idempotence,
reserved commands, error mapping and the 0600 files it writes."""

from __future__ import annotations

import json
import os
import stat

import pytest
from wggwtest import dump

TENANT_FIELDS = {
    "name",
    "interface",
    "pools",
    "egress",
    "uplink",
    "via",
    "table",
    "rotate_after",
    "peers",
    "gateway",
    "moving_to",
}
PEER_FIELDS = {
    "name",
    "tenant",
    "public_key",
    "addresses",
    "key_created_at",
    "expires_at",
    "keepalive",
    "dns",
    "has_private_key",
    "retiring",
}
INTERFACE_FIELDS = {
    "name",
    "listen_port",
    "endpoint",
    "mtu",
    "public_key",
    "tenants",
    "gateways",
}


def _secrets_of(state_dir):
    from wggw.store.sqlite import open_store

    with open_store(state_dir) as store:
        state = store.load()
    out = [i.private_key.reveal() for i in state.interfaces]
    for p in state.peers:
        out += [s.reveal() for s in (p.private_key, p.psk) if s is not None]
    return out


def test_quick_start(gw, state_dir):
    gw("peer", "add", "acme/alice", "--dns", "9.9.9.9", "--keepalive", "25")
    text = gw("peer", "config", "acme/alice").stdout
    assert "Address = 10.10.0.2/32, fd00:10::2/128" in text
    assert "AllowedIPs = 0.0.0.0/0, ::/0" in text
    assert "Endpoint = vpn.example.com:51820" in text
    assert "DNS = 9.9.9.9" in text and "PersistentKeepalive = 25" in text


def test_init_is_idempotent(cli, state_dir):
    assert "initialised" in cli("init").stdout
    cli("interface", "add", "wg0", "--listen-port", "51820", "--endpoint", "192.0.2.1:51820")
    before = dump(state_dir)
    assert "nothing changed" in cli("init").stdout
    assert dump(state_dir) == before


def test_json_fields_are_the_contract(gw, state_dir):
    gw("peer", "add", "acme/alice", "--expires", "2099-01-31T12:00:00Z")
    tenant = json.loads(gw("tenant", "show", "acme", "--json").stdout)
    assert set(tenant) == TENANT_FIELDS
    assert tenant == {
        "name": "acme",
        "interface": "wg0",
        "pools": ["10.10.0.0/24", "fd00:10::/64"],
        "egress": ["203.0.113.10", "2001:db8::10"],
        "uplink": None,
        "via": [],
        "table": 60000,
        "rotate_after": None,
        "peers": 1,
        "gateway": None,
        "moving_to": None,
    }
    peer = json.loads(gw("peer", "show", "acme/alice", "--json").stdout)
    assert set(peer) == PEER_FIELDS | {"rotations"}  # show adds the key's audit trail
    assert peer["rotations"] == []
    assert peer["addresses"] == ["10.10.0.2/32", "fd00:10::2/128"]
    assert peer["expires_at"] == "2099-01-31T12:00:00Z"
    assert (
        peer["key_created_at"].endswith("Z")
        and peer["has_private_key"] is True
        and peer["retiring"] is None
    )
    iface = json.loads(gw("interface", "show", "wg0", "--json").stdout)
    assert set(iface) == INTERFACE_FIELDS and iface["tenants"] == ["acme"]
    assert [set(p) for p in json.loads(gw("peer", "list", "--json").stdout)] == [PEER_FIELDS]
    assert [t["name"] for t in json.loads(gw("tenant", "list", "--json").stdout)] == ["acme"]
    assert [i["name"] for i in json.loads(gw("interface", "list", "--json").stdout)] == ["wg0"]


def test_listings_never_show_secrets(gw, state_dir):
    gw("peer", "add", "acme/alice")
    outputs = [
        gw(*cmd).output
        for cmd in (
            ["peer", "list"],
            ["peer", "list", "--json"],
            ["peer", "show", "acme/alice"],
            ["peer", "show", "acme/alice", "--json"],
            ["tenant", "list"],
            ["tenant", "show", "acme", "--json"],
            ["interface", "list"],
            ["interface", "show", "wg0", "--json"],
        )
    ]
    outputs.append(gw("peer", "add", "acme/bob").output)
    outputs.append(gw("peer", "add", "acme/carol", "--json").output)
    for secret in _secrets_of(state_dir):
        assert not any(secret in out for out in outputs)


def test_peer_list_filters_by_tenant(gw):
    gw("tenant", "add", "beta", "--pool", "10.20.0.0/24", "--egress", "198.51.100.20")
    gw("peer", "add", "acme/alice")
    gw("peer", "add", "beta/bob")
    peers = json.loads(gw("peer", "list", "--tenant", "beta", "--json").stdout)
    assert [(p["tenant"], p["name"], p["addresses"]) for p in peers] == [
        ("beta", "bob", ["10.20.0.2/32"])
    ]


def test_tables_are_allocated_lowest_free(gw):
    gw("tenant", "add", "beta", "--pool", "10.20.0.0/24", "--egress", "198.51.100.20")
    gw("tenant", "add", "gamma", "--pool", "10.30.0.0/24", "--egress", "198.51.100.30")
    gw("tenant", "remove", "beta")
    gw("tenant", "add", "delta", "--pool", "10.40.0.0/24", "--egress", "198.51.100.40")
    tables = {t["name"]: t["table"] for t in json.loads(gw("tenant", "list", "--json").stdout)}
    assert tables == {"acme": 60000, "delta": 60001, "gamma": 60002}


def test_removed_peer_address_is_reused(gw):
    gw("peer", "add", "acme/a")
    gw("peer", "add", "acme/b")
    gw("peer", "remove", "acme/a")
    peer = json.loads(gw("peer", "add", "acme/c", "--json").stdout)
    assert peer["addresses"] == ["10.10.0.2/32", "fd00:10::2/128"]


def test_own_public_key_stores_no_private_key(gw):
    from wggw.core import keys

    _, public = keys.keypair()
    peer = json.loads(gw("peer", "add", "acme/own", "--public-key", public, "--json").stdout)
    assert peer["public_key"] == public and peer["has_private_key"] is False


def test_tenant_options_are_stored(gw):
    gw(
        "tenant",
        "add",
        "beta",
        "--pool",
        "10.20.0.0/24",
        "--egress",
        "198.51.100.20",
        "--uplink",
        "eth0.100",
        "--via",
        "198.51.100.1",
        "--rotate-after",
        "90d",
        "--interface",
        "wg0",
    )
    t = json.loads(gw("tenant", "show", "beta", "--json").stdout)
    assert (t["uplink"], t["via"], t["rotate_after"]) == ("eth0.100", ["198.51.100.1"], 90 * 86400)


def test_config_written_0600(gw, tmp_path):
    gw("peer", "add", "acme/alice")
    out = tmp_path / "alice.conf"
    gw("peer", "config", "acme/alice", "--output", str(out))
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_text().startswith("# wggw client config")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


@pytest.mark.parametrize("suffix,magic", [(".png", b"\x89PNG"), (".svg", b"<?xml")])
def test_qr_files(gw, tmp_path, suffix, magic):
    gw("peer", "add", "acme/alice")
    out = tmp_path / f"alice{suffix}"
    gw("peer", "config", "acme/alice", "--qr", "--output", str(out))
    assert out.read_bytes().startswith(magic) and stat.S_IMODE(out.stat().st_mode) == 0o600


def test_qr_terminal(gw):
    gw("peer", "add", "acme/alice")
    text = gw("peer", "config", "acme/alice", "--qr").stdout
    assert "█" in text and "PrivateKey" not in text


@pytest.mark.parametrize("command", ["plan", "apply", "status", "down", "rotate"])
def test_reserved_commands_have_help(cli, command):
    assert "Usage:" in cli(command, "--help").stdout


def test_every_noun_has_help(cli):
    for args in (
        ["--help"],
        ["interface", "--help"],
        ["tenant", "--help"],
        ["peer", "--help"],
        ["import", "wg-quick", "--help"],
        ["export", "wg-quick", "--help"],
    ):
        cli(*args)


def test_unexpected_error_is_one_line_exit_1(gw, monkeypatch):
    from wggw.ops import objects

    def boom(*a, **k):
        secret = "do-not-print-me"  # noqa: F841 - would show up in a locals dump
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(objects, "add_peer", boom)
    monkeypatch.delenv("WGGW_DEBUG", raising=False)
    result = gw("peer", "add", "acme/alice", code=1)
    assert result.stderr.strip().splitlines() == [
        "wggw: error: unexpected RuntimeError: disk on fire (set WGGW_DEBUG=1 for a traceback)"
    ]
    assert "do-not-print-me" not in result.output


def test_state_dir_from_environment(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from wggw.cli.app import app

    monkeypatch.setenv("WGGW_STATE_DIR", str(tmp_path / "env-state"))
    assert CliRunner().invoke(app, ["init"]).exit_code == 0
    assert (tmp_path / "env-state" / "wggw.db").is_file()
    assert stat.S_IMODE(os.stat(tmp_path / "env-state").st_mode) == 0o700


def test_unwritable_output_is_a_usage_error(gw, tmp_path):
    gw("peer", "add", "acme/alice")
    result = gw(
        "peer", "config", "acme/alice", "--output", str(tmp_path / "no" / "such" / "a.conf"), code=2
    )
    assert "wggw: error: output: cannot write" in result.stderr

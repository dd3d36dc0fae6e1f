"""What wggw writes is what WireGuard's own tools accept: keys checked with `wg pubkey`
(secrets on stdin, never argv), configs through `wg-quick strip` and wgconfig, and the
wg-quick import/export round trip."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import wgconfig
from wggwtest import dump

from wggw.store.sqlite import open_store

needs_wg = pytest.mark.skipif(shutil.which("wg") is None, reason="needs wireguard-tools (`wg`)")


def _wg_pubkey(private: str) -> str:
    return subprocess.run(
        ["wg", "pubkey"], input=private + "\n", capture_output=True, text=True, check=True
    ).stdout.strip()


def _strip(path: Path) -> str:
    """`wg-quick strip` needs root (it re-execs via sudo otherwise) and a NAME.conf path."""
    if os.geteuid() != 0 or shutil.which("wg-quick") is None:
        pytest.skip("wg-quick strip needs root and wg-quick")
    return subprocess.run(
        ["wg-quick", "strip", str(path)], capture_output=True, text=True, check=True
    ).stdout


def _state(state_dir):
    with open_store(state_dir) as store:
        return store.load()


@needs_wg
def test_stored_public_keys_match_wg_pubkey(gw, state_dir):
    gw("peer", "add", "acme/alice")
    state = _state(state_dir)
    for obj in (*state.interfaces, *state.peers):
        assert _wg_pubkey(obj.private_key.reveal()) == obj.public_key


@needs_wg
def test_client_config_is_accepted_by_wg_quick_strip_and_wgconfig(gw, state_dir, tmp_path):
    gw(
        "interface",
        "add",
        "wg1",
        "--listen-port",
        "51821",
        "--endpoint",
        "[2001:db8::1]:51821",
        "--mtu",
        "1380",
    )
    gw(
        "tenant",
        "add",
        "beta",
        "--pool",
        "10.20.0.0/24",
        "--egress",
        "198.51.100.20",
        "--interface",
        "wg1",
    )
    gw("peer", "add", "beta/bob", "--dns", "9.9.9.9", "--keepalive", "25")
    conf = tmp_path / "wgc0.conf"
    gw("peer", "config", "beta/bob", "--output", str(conf))
    stripped = _strip(conf)
    assert "Address" not in stripped and "DNS" not in stripped and "MTU" not in stripped
    state = _state(state_dir)
    peer, iface = state.peers[0], state.interfaces[1]

    cfg = wgconfig.WGConfig(str(conf))
    cfg.read_file()
    assert cfg.get_interface()["PrivateKey"] == peer.private_key.reveal()
    assert cfg.get_interface()["Address"] == "10.20.0.2/32"
    assert cfg.get_interface()["MTU"] == 1380
    server = cfg.get_peer(iface.public_key)
    assert server["PresharedKey"] == peer.psk.reveal()
    assert server["Endpoint"] == "[2001:db8::1]:51821"
    assert server["AllowedIPs"] == ["0.0.0.0/0", "::/0"]
    assert server["PersistentKeepalive"] == 25
    _maybe_setconf(stripped, tmp_path)


def _maybe_setconf(stripped: str, tmp_path: Path) -> None:
    """`wg setconf` on a real WireGuard link in a throwaway namespace, where the kernel allows
    it."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return
    (tmp_path / "stripped.conf").write_text(stripped)
    script = f"ip link add wgt type wireguard && wg setconf wgt {tmp_path / 'stripped.conf'}"
    probe = subprocess.run(
        ["unshare", "-n", "sh", "-c", "ip link add wgt type wireguard"], capture_output=True
    )
    if probe.returncode != 0:
        return  # no kernel module here: strip + wgconfig must do
    subprocess.run(["unshare", "-n", "sh", "-c", script], check=True, capture_output=True)


@needs_wg
def test_export_import_round_trip(gw, state_dir, tmp_path):
    from wggw.core import keys

    gw("peer", "add", "acme/alice", "--keepalive", "25")
    gw("peer", "add", "acme/bob")
    _, own = keys.keypair()
    gw("peer", "add", "acme/own", "--public-key", own)
    exported = tmp_path / "wg0.conf"
    gw("export", "wg-quick", "wg0", "--output", str(exported))
    assert oct(exported.stat().st_mode & 0o777) == "0o600"
    _strip(exported)
    original = _state(state_dir)
    assert (
        _wg_pubkey(wgconfig_interface(exported)["PrivateKey"]) == original.interfaces[0].public_key
    )

    # a second gateway takes the peers over
    other = tmp_path / "other"
    gw("--state-dir", str(other), "init")
    gw(
        "--state-dir",
        str(other),
        "interface",
        "add",
        "wg0",
        "--listen-port",
        "51820",
        "--endpoint",
        "h:51820",
    )
    gw(
        "--state-dir",
        str(other),
        "tenant",
        "add",
        "acme",
        "--pool",
        "10.10.0.0/24",
        "--pool",
        "fd00:10::/64",
        "--egress",
        "203.0.113.10",
        "--egress",
        "2001:db8::10",
    )
    out = gw(
        "--state-dir", str(other), "import", "wg-quick", str(exported), "--tenant", "acme"
    ).stdout
    assert "3 peer(s) imported" in out
    moved = _state(other)
    view = lambda p: (p.name, p.public_key, p.psk, p.addresses, p.keepalive)  # noqa: E731
    assert sorted(map(view, moved.peers)) == sorted(map(view, original.peers))
    assert all(p.private_key is None for p in moved.peers)


def wgconfig_interface(path: Path) -> dict:
    cfg = wgconfig.WGConfig(str(path))
    cfg.read_file()
    return cfg.get_interface()


SERVER = """[Interface]
PrivateKey = {gw}
ListenPort = 51820
Address = 10.10.0.1/24

### Client laptop
[Peer]
PublicKey = {a}
PresharedKey = {psk}
AllowedIPs = 10.10.0.7/32

[Peer]
PublicKey = {b}
AllowedIPs = {b_addr}
"""


def _server_conf(tmp_path, b_addr="10.10.0.8/32, fd00:10::8/128"):
    from wggw.core import keys

    path = tmp_path / "server.conf"
    path.write_text(
        SERVER.format(
            gw=keys.generate_private().reveal(),
            a=keys.keypair()[1],
            psk=keys.generate_psk().reveal(),
            b=keys.keypair()[1],
            b_addr=b_addr,
        )
    )
    return path


def test_import_names_and_addresses(gw, tmp_path):
    path = _server_conf(tmp_path)
    peers = json.loads(gw("import", "wg-quick", str(path), "--tenant", "acme", "--json").stdout)
    assert [(p["name"], p["addresses"]) for p in peers] == [
        ("laptop", ["10.10.0.7/32"]),
        ("imported-1", ["10.10.0.8/32", "fd00:10::8/128"]),
    ]
    # new peers are allocated around imported ones
    assert (
        json.loads(gw("peer", "add", "acme/new", "--json").stdout)["addresses"][0] == "10.10.0.2/32"
    )


@pytest.mark.parametrize(
    "b_addr,message",
    [
        (
            "10.99.0.8/32",
            "AllowedIPs of peer imported-1: 10.99.0.8 is outside the pools of tenant acme",
        ),
        (
            "10.10.0.7/32",
            "AllowedIPs of peer imported-1: 10.10.0.7 is already used by another peer",
        ),
        (
            "10.10.0.0/24",
            "AllowedIPs of peer imported-1: 10.10.0.0/24 is not a single host address",
        ),
        ("10.10.0.1/32", "is the network, broadcast or gateway address"),
    ],
)
def test_import_is_all_or_nothing(gw, state_dir, tmp_path, b_addr, message):
    path = _server_conf(tmp_path, b_addr)
    before = dump(state_dir)
    result = gw("import", "wg-quick", str(path), "--tenant", "acme", code=2)
    assert message in result.stderr
    assert dump(state_dir) == before


def test_import_rejects_bad_files(gw, state_dir, tmp_path):
    before = dump(state_dir)
    assert (
        "file: cannot read"
        in gw("import", "wg-quick", str(tmp_path / "nope.conf"), "--tenant", "acme", code=2).stderr
    )
    bad = tmp_path / "bad.conf"
    bad.write_text("[Interface]\n\n[Peer]\nPublicKey = short\nAllowedIPs = 10.10.0.9/32\n")
    assert (
        "PublicKey of peer imported-1: not valid base64"
        in gw("import", "wg-quick", str(bad), "--tenant", "acme", code=2).stderr
    )
    assert (
        "tenant: no tenant named 'zz'"
        in gw("import", "wg-quick", str(bad), "--tenant", "zz", code=2).stderr
    )
    assert dump(state_dir) == before

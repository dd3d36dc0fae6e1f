"""Many peers in one command (`peer add acme/dev-{1..N}`, `--from-file`) and `import wg-quick`:
one transaction, all or nothing, the same addresses one-by-one adds would give, and linear
(the state is loaded once, not once per peer)."""

from __future__ import annotations

import ipaddress
import json
import time

import pytest
from wggwtest import dump

from wggw.core import keys


def _peers(cli) -> list[dict]:
    return json.loads(cli("peer", "list", "--json").output)


def test_range_adds_every_peer_with_own_keys_and_addresses(gw):
    out = gw("peer", "add", "acme/dev-{01..40}").output
    assert "40 peer(s) added" in out
    peers = _peers(gw)
    assert [p["name"] for p in peers] == [f"dev-{i:02d}" for i in range(1, 41)]
    v4 = [p["addresses"][0] for p in peers]
    assert v4 == [f"10.10.0.{i}/32" for i in range(2, 42)]
    assert len({p["public_key"] for p in peers}) == 40 and all(p["has_private_key"] for p in peers)
    assert "PrivateKey = " in gw("peer", "config", "acme/dev-17").output


def test_bulk_takes_the_lowest_free_addresses_like_single_adds(gw):
    for name in ("a", "b", "c"):
        gw("peer", "add", f"acme/{name}")
    gw("peer", "remove", "acme/b")
    gw("peer", "add", "acme/x", "acme/y", "--keepalive", "25")
    by_name = {p["name"]: p for p in _peers(gw)}
    assert by_name["x"]["addresses"] == ["10.10.0.3/32", "fd00:10::3/128"]  # b's, freed
    assert by_name["y"]["addresses"] == ["10.10.0.5/32", "fd00:10::5/128"]
    assert by_name["y"]["keepalive"] == 25


@pytest.mark.parametrize(
    "args, named",
    [
        (["acme/n1", "acme/n2", "acme/n1"], "acme/n1 is given twice"),
        (["acme/ok-{1..3}", "acme/Bad name"], "Bad name"),
        (["acme/ok-{1..3}", "nobody/p1"], "nobody"),
        (["acme/ok-{1..3}", "acme/taken"], "acme/taken already exists"),
        (["acme/ok-{5..1}"], "counts down"),
        (["acme/ok-{1..100001}"], "more than 100,000"),
        (
            ["acme/a", "acme/b", "--public-key", "x" * 43 + "="],
            "one key cannot serve several peers",
        ),
    ],
)
def test_a_bad_entry_is_one_line_and_nothing_is_written(gw, state_dir, args, named):
    gw("peer", "add", "acme/taken")
    before = dump(state_dir)
    res = gw("peer", "add", *args, code=2)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wggw: error: ") and named in lines[0], (
        res.stderr
    )
    assert dump(state_dir) == before


def test_a_full_pool_refuses_the_whole_batch(cli, state_dir):
    cli("init")
    cli("interface", "add", "wg0", "--listen-port", "51820", "--endpoint", "vpn.example.com:51820")
    cli("tenant", "add", "small", "--pool", "10.20.0.0/29", "--egress", "203.0.113.20")
    before = dump(state_dir)
    res = cli("peer", "add", "small/p{1..6}", code=2)  # /29: .2-.6 are 5 addresses
    assert "no free address left" in res.stderr and "small/p6" in res.stderr
    assert dump(state_dir) == before
    cli("peer", "add", "small/p{1..5}")


def test_from_csv_file(gw, tmp_path):
    own = keys.keypair()[1]
    f = tmp_path / "peers.csv"
    f.write_text(
        f"tenant,name,public_key,keepalive,dns\nacme,laptop,,25,9.9.9.9\nacme,phone,{own},,\n"
    )
    gw("peer", "add", "--from-file", str(f), "acme/extra")
    by_name = {p["name"]: p for p in _peers(gw)}
    assert set(by_name) == {"laptop", "phone", "extra"}
    assert by_name["laptop"]["keepalive"] == 25 and by_name["laptop"]["dns"] == ["9.9.9.9"]
    assert by_name["phone"]["public_key"] == own and not by_name["phone"]["has_private_key"]


def test_from_json_file_and_a_bad_line_named(gw, tmp_path, state_dir):
    good = tmp_path / "peers.json"
    good.write_text(json.dumps([{"ref": "acme/j1"}, {"ref": "acme/j2", "expires": "30d"}]))
    out = json.loads(gw("peer", "add", "--from-file", str(good), "--json").output)
    assert [p["name"] for p in out] == ["j1", "j2"] and out[1]["expires_at"]
    bad = tmp_path / "bad.csv"
    bad.write_text("ref,dns\nacme/c1,9.9.9.9\nacme/c2,not-an-ip\n")
    before = dump(state_dir)
    res = gw("peer", "add", "--from-file", str(bad), code=2)
    assert f"{bad} line 3" in res.stderr and "dns" in res.stderr
    assert dump(state_dir) == before
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps([{"ref": "acme/u1", "private_key": "x"}]))
    res = gw("peer", "add", "--from-file", str(unknown), code=2)
    assert "unknown field 'private_key'" in res.stderr


def _count_loads(monkeypatch) -> list[int]:
    from wggw.store import sqlite

    calls = [0]
    original = sqlite.SqliteTx.load

    def counting(self):
        calls[0] += 1
        return original(self)

    monkeypatch.setattr(sqlite.SqliteTx, "load", counting)
    return calls


def _wg_quick(n: int) -> str:
    lines = [
        "[Interface]",
        "PrivateKey = " + keys.generate_private().reveal(),
        "ListenPort = 51820",
        "",
    ]
    for i in range(n):
        net = ipaddress.ip_address("10.10.0.2") + i
        lines += [
            f"# Name = acme/c{i}",
            "[Peer]",
            f"PublicKey = {keys.keypair()[1]}",
            f"AllowedIPs = {net}/32",
            "",
        ]
    return "\n".join(lines)


def test_bulk_add_and_import_load_the_state_once(gw, tmp_path, monkeypatch):
    calls = _count_loads(monkeypatch)
    gw("peer", "add", "acme/d{1..60}")
    assert calls[0] == 1
    conf = tmp_path / "wg0.conf"
    gw("tenant", "add", "beta", "--pool", "10.30.0.0/22", "--egress", "203.0.113.30")
    conf.write_text(_wg_quick(200).replace("10.10.", "10.30."))
    calls[0] = 0
    gw("import", "wg-quick", str(conf), "--tenant", "beta")
    assert calls[0] == 1
    assert len([p for p in _peers(gw) if p["tenant"] == "beta"]) == 200


def test_import_of_thousands_is_linear(cli, tmp_path):
    """Was 107 s for 4,000 peers (a state reload per peer); generous bound for a shared machine."""
    cli("init")
    cli("interface", "add", "wg0", "--listen-port", "51820", "--endpoint", "vpn.example.com:51820")
    cli("tenant", "add", "big", "--pool", "10.64.0.0/16", "--egress", "203.0.113.40")
    conf = tmp_path / "big.conf"
    conf.write_text(_wg_quick(4000).replace("10.10.", "10.64."))
    started = time.monotonic()
    cli("import", "wg-quick", str(conf), "--tenant", "big")
    assert time.monotonic() - started < 30
    assert len(_peers(cli)) == 4000

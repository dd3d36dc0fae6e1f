"""The naive manager the benchmark compares wggw against, run inside the gateway namespace.

What shell scripts and several popular tools amount to: one `wg set` process per peer, one `ip`
process per address, route and rule (a flat list of rules, one per tenant), one `iptables`
process per tenant SNAT rule (a linear list), and for a one-peer change: regenerate the whole
config file and `wg syncconf`. Secrets go through stdin or 0600 files, never argv.

    python3 -m benchmarks.naive apply SPEC        cold apply of everything in SPEC
    python3 -m benchmarks.naive add SPEC          add one peer (new key), regenerate, wg syncconf
    python3 -m benchmarks.naive remove SPEC       remove the last peer, regenerate, wg syncconf
    python3 -m benchmarks.naive rotate SPEC N     new keys for N peers (one per tenant):
                                                  one `wg set` each
    python3 -m benchmarks.naive sync SPEC         regenerate and `wg syncconf` (undo a rotation)
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time

from nacl.public import PrivateKey

UPLINK, NEXT_HOP = "uplink0", "198.19.255.254"
START_TIMEOUT = 10.0


def sh(*argv: str, stdin: str | None = None) -> None:
    subprocess.run(argv, input=stdin, text=True, check=True, stdout=subprocess.DEVNULL)


def keypair() -> tuple[str, str]:
    k = PrivateKey.generate()
    return base64.b64encode(bytes(k)).decode(), base64.b64encode(bytes(k.public_key)).decode()


def start_wireguard_go(ifname: str) -> None:
    """As wg-quick does: `wireguard-go IFNAME` (it daemonizes), then wait for its socket."""
    sh("wireguard-go", ifname)
    deadline = time.monotonic() + START_TIMEOUT
    while not os.path.exists(f"/var/run/wireguard/{ifname}.sock"):
        if time.monotonic() > deadline:
            raise SystemExit(f"wireguard-go {ifname} did not come up")
        time.sleep(0.005)


def apply(spec: dict) -> None:
    ifname = spec["ifname"]
    start_wireguard_go(ifname)
    sh(
        "wg",
        "set",
        ifname,
        "listen-port",
        str(spec["listen_port"]),
        "private-key",
        "/dev/stdin",
        stdin=spec["private_key"],
    )
    sh("ip", "link", "set", ifname, "mtu", "1420", "up")
    sh("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
    for i, t in enumerate(spec["tenants"]):
        sh("ip", "addr", "add", t["gateway"], "dev", ifname)
        sh("ip", "addr", "add", f"{t['egress']}/32", "dev", UPLINK)
        sh("ip", "route", "add", t["pool"], "dev", ifname, "table", str(t["table"]))
        sh(
            "ip",
            "route",
            "add",
            "default",
            "via",
            NEXT_HOP,
            "dev",
            UPLINK,
            "src",
            t["egress"],
            "table",
            str(t["table"]),
        )
        sh(
            "ip",
            "rule",
            "add",
            "from",
            t["pool"],
            "lookup",
            str(t["table"]),
            "pref",
            str(10000 + i),
        )
        sh(
            "iptables",
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-s",
            t["pool"],
            "-o",
            UPLINK,
            "-j",
            "SNAT",
            "--to-source",
            t["egress"],
        )
    for p in spec["peers"]:
        sh(
            "wg",
            "set",
            ifname,
            "peer",
            p["public_key"],
            "preshared-key",
            "/dev/stdin",
            "allowed-ips",
            p["allowed"],
            stdin=p["psk"],
        )


def config_text(spec: dict) -> str:
    lines = [
        "[Interface]",
        f"PrivateKey = {spec['private_key']}",
        f"ListenPort = {spec['listen_port']}",
    ]
    for p in spec["peers"]:
        lines += [
            "",
            "[Peer]",
            f"PublicKey = {p['public_key']}",
            f"PresharedKey = {p['psk']}",
            f"AllowedIPs = {p['allowed']}",
        ]
    return "\n".join(lines) + "\n"


def syncconf(spec: dict, path: str) -> None:
    """Regenerate the whole config file (0600) and let `wg syncconf` apply the difference."""
    conf = os.path.join(os.path.dirname(path), f"{spec['ifname']}.conf")
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(config_text(spec))
    sh("wg", "syncconf", spec["ifname"], conf)
    save(spec, path)


def save(spec: dict, path: str) -> None:
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(spec, f)
    os.replace(path + ".tmp", path)


def add_one(spec: dict, path: str) -> None:
    last = spec["peers"][-1]
    extra = sum(p["name"].startswith("x") for p in spec["peers"])
    _, public = keypair()
    a, b, c, _ = last["allowed"].split("/")[0].split(".")
    spec["peers"].append(
        {
            "tenant": last["tenant"],
            "name": f"x{len(spec['peers'])}",
            "public_key": public,
            "psk": keypair()[0],
            "allowed": f"{a}.{b}.{c}.{200 + extra}/32",
        }
    )
    syncconf(spec, path)


def rotate(spec: dict, n: int) -> None:
    """A new key for peer 0 of `n` tenants, added beside the old one (as wggw's grace does)."""
    for p in [p for p in spec["peers"] if p["name"] == "p0"][:n]:
        _, public = keypair()
        a, b, c, d = (int(x) for x in p["allowed"].split("/")[0].split("."))
        sh(
            "wg",
            "set",
            spec["ifname"],
            "peer",
            public,
            "preshared-key",
            "/dev/stdin",
            "allowed-ips",
            f"{a}.{b}.{c}.{d + 50}/32",
            stdin=keypair()[0],
        )


def main(argv: list[str]) -> None:
    cmd, path = argv[0], argv[1]
    with open(path) as f:
        spec = json.load(f)
    if cmd == "apply":
        apply(spec)
    elif cmd == "add":
        add_one(spec, path)
    elif cmd == "remove":
        spec["peers"].pop()
        syncconf(spec, path)
    elif cmd == "sync":
        syncconf(spec, path)
    elif cmd == "rotate":
        rotate(spec, int(argv[2]))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv[1:])

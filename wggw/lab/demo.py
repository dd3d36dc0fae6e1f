"""The demo (`sudo scripts/demo`, i.e. `python -m wggw.lab.demo`): two tenants, each leaving
through its own egress IP.

It builds a throwaway lab of network namespaces on this host (`wggw.lab.topology`), runs the real
`wggw` CLI inside the gateway namespace exactly as an operator would, connects one WireGuard
client per tenant, and shows with real traffic what the internet sees. Then `wggw down` and the
lab is removed, also on failure or Ctrl-C. Exit status 0 only if every check passed.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from dataclasses import dataclass

from wggw.lab.topology import INET_URL_V4, INET_URL_V6, UPLINK_DEV, FetchError, Lab, LabError

LISTEN_PORT = 51820


@dataclass(frozen=True)
class DemoTenant:
    name: str
    pools: tuple[str, str]
    egress: tuple[str, str]  # (IPv4, IPv6)
    client: str = "laptop"

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.client}"


TENANTS = (
    DemoTenant("acme", ("10.10.0.0/24", "fd00:a::/64"), ("203.0.113.10", "2001:db8:ffff::10")),
    DemoTenant("globex", ("10.20.0.0/24", "fd00:b::/64"), ("203.0.113.20", "2001:db8:ffff::20")),
)


@dataclass
class Check:
    what: str
    expected: str
    seen: str
    ok: bool


class Out:
    """Human-facing output: headings, echoed commands, indented tool output, OK/FAIL in colour
    on a tty."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.color = sys.stdout.isatty() and os.environ.get("NO_COLOR") is None

    def _c(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def heading(self, text: str) -> None:
        print(f"\n{self._c('1', '== ' + text)}", flush=True)

    def command(self, text: str) -> None:
        print(self._c("36", f"$ {text}"), flush=True)

    def body(self, text: str, always: bool = False, summary: bool = False) -> None:
        """Indented tool output: shown if `always` or verbose; with `summary`, the `[#]` change
        lines are left out unless verbose (the plan has already listed them)."""
        lines = text.rstrip().splitlines()
        if summary and not self.verbose:
            lines = [line for line in lines if not line.startswith("[#]")]
        if (always or summary or self.verbose) and lines:
            print("\n".join("    " + line for line in lines), flush=True)

    def verdict(self, ok: bool) -> str:
        return self._c("32", "OK") if ok else self._c("31;1", "FAIL")


class Demo:
    def __init__(self, lab: Lab, out: Out) -> None:
        self.lab, self.out = lab, out
        self.ifname = f"wgdemo{lab.suffix[:4]}"
        lab.own_ifname(
            self.ifname
        )  # wggw's wireguard-go socket is this run's if wggw cannot remove it
        self.checks: list[Check] = []

    def wggw(
        self,
        *args: str,
        show: bool = False,
        summary: bool = False,
        ok_codes: tuple[int, ...] = (0,),
    ) -> str:
        """Run one wggw command in the gateway namespace, echoing it like an operator's shell."""
        self.out.command("wggw " + " ".join(args))
        res = self.lab.wggw(*args, ok_codes=ok_codes)
        self.out.body(res.stdout, always=show, summary=summary)
        return res.stdout

    def configure(self) -> None:
        self.out.heading("1. Configure wggw (the store only; the kernel is untouched so far)")
        self.wggw("init")
        self.wggw(
            "interface",
            "add",
            self.ifname,
            "--listen-port",
            str(LISTEN_PORT),
            "--endpoint",
            f"{self.lab.gw_underlay_ip}:{LISTEN_PORT}",
        )
        for t in TENANTS:
            self.wggw(
                "tenant",
                "add",
                t.name,
                "--pool",
                t.pools[0],
                "--pool",
                t.pools[1],
                "--egress",
                t.egress[0],
                "--egress",
                t.egress[1],
                "--uplink",
                UPLINK_DEV,
            )
        for t in TENANTS:
            self.wggw("peer", "add", t.ref)

    def apply(self) -> None:
        self.out.heading(
            "2. Plan and apply (WireGuard, routing tables, ip rules, one nftables table)"
        )
        self.wggw("plan", show=True, ok_codes=(0, 2))
        self.wggw("apply", summary=True)
        self.out.command("wggw plan --detailed-exitcode   # idempotence: nothing left to do")
        res = self.lab.wggw("plan", "--detailed-exitcode", check=False)
        ok = res.returncode == 0
        self.out.body(res.stdout + res.stderr, always=not ok)
        print(f"    exit {res.returncode} (0 = nothing to do)  {self.out.verdict(ok)}", flush=True)
        self.checks.append(
            Check("second plan after apply is empty", "exit 0", f"exit {res.returncode}", ok)
        )

    def connect_clients(self) -> None:
        self.out.heading(
            "3. Connect one WireGuard client per tenant (configs from `wggw peer config`)"
        )
        for t in TENANTS:
            self.out.command(
                f"wggw peer config {t.ref}   # contains the client's private key: not shown"
            )
            conf = self.lab.wggw("peer", "config", t.ref).stdout
            client = self.lab.client(t.name)
            ifname = client.up_wireguard(conf)
            print(
                f"    {t.ref}: {client.name} up on {ifname}, tunnel addresses "
                f"{', '.join(client.tunnel_addresses)}",
                flush=True,
            )

    def check_egress(self) -> list[list[str]]:
        """Fetch from the internet host over both families; it answers with the source it saw."""
        rows = []
        for t in TENANTS:
            client = self.lab.client(t.name)
            for fam, url, expected in (
                ("IPv4", INET_URL_V4, t.egress[0]),
                ("IPv6", INET_URL_V6, t.egress[1]),
            ):
                try:
                    seen = client.fetch_retry(url, attempts=6, delay=0.5, timeout=2.0)
                except FetchError as exc:
                    seen = f"no answer ({exc.args[0].split(': ')[-1]})"
                ok = seen == expected
                self.checks.append(Check(f"{t.ref} {fam} leaves as {expected}", expected, seen, ok))
                rows.append([t.name, t.client, fam, seen, expected, "OK" if ok else "FAIL"])
        return rows

    def check_isolation(self) -> list[list[str]]:
        """A tenant's client must not reach another tenant's client (ping its tunnel addresses)."""
        rows = []
        for src, dst in ((TENANTS[0], TENANTS[1]), (TENANTS[1], TENANTS[0])):
            for addr in self.lab.client(dst.name).tunnel_addresses:
                reached = self.lab.client(src.name).can_reach(addr)
                self.checks.append(
                    Check(
                        f"{src.ref} cannot reach {dst.ref} {addr}",
                        "blocked",
                        "REACHED" if reached else "blocked",
                        not reached,
                    )
                )
                rows.append(
                    [
                        src.ref,
                        f"{dst.ref} ({addr})",
                        "REACHED" if reached else "blocked",
                        "FAIL" if reached else "OK",
                    ]
                )
        return rows

    def down(self) -> bool:
        self.out.heading("7. wggw down (removes everything wggw created, nothing else)")
        self.out.command("wggw down")
        res = self.lab.wggw("down", check=False)
        self.out.body(res.stdout + res.stderr, summary=True)
        return res.returncode == 0


def print_table(out: Out, rows: list[list[str]], header: list[str]) -> None:
    """Aligned columns; the last column is OK/FAIL, coloured after padding so widths stay right."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print("    " + "  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True)).rstrip())
    for row in rows:
        cells = [c.ljust(w) for c, w in zip(row[:-1], widths, strict=False)]  # all but the verdict
        print("    " + "  ".join(cells + [out.verdict(row[-1] == "OK")]), flush=True)


def run_demo(lab: Lab, out: Out) -> list[Check]:
    demo = Demo(lab, out)
    try:
        demo.configure()
        demo.apply()
        demo.connect_clients()
        out.heading(
            "4. What the internet host sees (it answers every request with the source address)"
        )
        print_table(
            out,
            demo.check_egress(),
            ["TENANT", "CLIENT", "FAMILY", "INTERNET SAW", "EXPECTED EGRESS", "RESULT"],
        )
        out.heading("5. Isolation between tenants")
        print_table(out, demo.check_isolation(), ["FROM", "TO", "PING", "RESULT"])
        out.heading("6. wggw status (per peer handshake and traffic, per tenant totals, drift)")
        demo.wggw("status", show=True)
    finally:
        downed = demo.down()
    demo.checks.append(Check("wggw down", "exit 0", "exit 0" if downed else "failed", downed))
    return demo.checks


def _sigterm(signum: int, frame: object) -> None:
    # Turn SIGTERM into an exception so the lab's context manager still cleans up.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m wggw.lab.demo", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also print the output of every wggw command"
    )
    args = parser.parse_args(argv)
    out = Out(args.verbose)
    if os.geteuid() != 0:
        print(
            "wggw demo: needs root (network namespaces): run `sudo scripts/demo`", file=sys.stderr
        )
        return 2
    signal.signal(signal.SIGTERM, _sigterm)
    print(
        "wggw demo: a gateway, an 'internet' host and one client per tenant, in network namespaces."
    )
    checks: list[Check] = []
    try:
        with Lab(tuple(t.name for t in TENANTS)) as lab:
            print(f"lab {lab.suffix}: namespaces {', '.join(lab.ns_names())}")
            checks = run_demo(lab, out)
        print(f"lab {lab.suffix} removed (namespaces, processes, sockets, temporary files).")
    except LabError as exc:
        # The tool's own error is at the end of the message; long command output before it is noise.
        lines = str(exc).splitlines()
        shown = lines if len(lines) <= 30 else [lines[0], "    ...", *lines[-25:]]
        print(f"\n{out.verdict(False)}: " + "\n".join(shown), file=sys.stderr)
        print(
            "The lab has been removed. Re-run with -v to see every command's output.",
            file=sys.stderr,
        )
        return 1
    except (KeyboardInterrupt, SystemExit):
        print("\nwggw demo: interrupted; the lab has been removed.", file=sys.stderr)
        raise
    failed = [c for c in checks if not c.ok]
    out.heading(f"Result: {len(checks) - len(failed)}/{len(checks)} checks passed")
    for c in failed:
        print(f"    {out.verdict(False)} {c.what}: expected {c.expected}, saw {c.seen}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

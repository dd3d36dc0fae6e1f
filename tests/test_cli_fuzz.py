"""Property-based tests (hypothesis) over the CLI's inputs (issue 9): whatever an operator
types (names, CIDRs with IPv6 edge cases, keys, durations, ports, endpoints, unicode, huge
values) and whatever a wg-quick file to import holds, a command either succeeds or prints
exactly one line on stderr and exits 2, never a traceback, and a failed command leaves the
store byte for byte as it was (SQLite dump before == after).

Each example runs in-process (CliRunner) on a fresh copy of one prepared store, so examples
do not see each other's writes. Commands that need a data plane get the fake backend.
Every bug these properties found has an @example with the input that showed it.
"""

from __future__ import annotations

import base64
import os
import shutil
import string
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner
from wggwtest import dump

from wggw.backends.fake import FakeSystem
from wggw.cli.app import app

# CI: a fixed seed and 100 examples per property (~30 s of CPU). To hunt
# for more: WGGW_FUZZ_EXAMPLES=3000 WGGW_FUZZ_RANDOM=1 pytest tests/test_cli_fuzz.py
EXAMPLES = int(os.environ.get("WGGW_FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("WGGW_FUZZ_RANDOM"),
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

ALICE_KEY = base64.b64encode(bytes(range(32))).decode()


# --- one prepared store, copied for every example ------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """wg0 + tenant acme (dual stack) + peer acme/alice with its own key."""
    state = tmp_path_factory.mktemp("fuzz-template") / "state"
    runner = CliRunner()
    for args in (
        ["init"],
        [
            "interface",
            "add",
            "wg0",
            "--listen-port",
            "51820",
            "--endpoint",
            "vpn.example.com:51820",
        ],
        [
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
        ],
        ["peer", "add", "acme/alice", "--public-key", ALICE_KEY],
    ):
        result = runner.invoke(app, ["--state-dir", str(state), *args])
        assert result.exit_code == 0, (args, result.output)
    return state


# After a success, what was stored must read back: peers listed (dates shown), and the whole
# state loaded, compiled and planned (fake backend).
READBACK = (["peer", "list", "--json"], ["plan", "--json"])


class Outcome:
    def __init__(self, result, before: list[str], after: list[str], state: Path):
        self.result, self.before, self.after, self.state = result, before, after, state
        self.code = result.exit_code
        self.readback: list = []


@pytest.fixture
def wggw(template, monkeypatch):
    """wggw(*args, files={name: text}) -> Outcome, on a fresh copy of the template store;
    '{dir}' in an argument is replaced by a scratch directory of the example."""
    import wggw.ops.dataplane as dataplane

    monkeypatch.setattr(dataplane, "system_for", lambda backend=None, may_load=False: FakeSystem())
    monkeypatch.delenv("WGGW_STATE_DIR", raising=False)
    runner = CliRunner()

    def run(*args: str, files: dict[str, str | bytes] | None = None) -> Outcome:
        scratch = Path(tempfile.mkdtemp(prefix="wggw-fuzz-"))
        try:
            state = scratch / "state"
            shutil.copytree(template, state)
            for name, content in (files or {}).items():
                # A lone surrogate becomes bytes that are not UTF-8, as in a damaged file.
                data = (
                    content
                    if isinstance(content, bytes)
                    else content.encode("utf-8", "surrogatepass")
                )
                (scratch / name).write_bytes(data)
            argv = [a.replace("{dir}", str(scratch)) for a in args]
            before = dump(state)
            result = runner.invoke(app, ["--state-dir", str(state), *argv])
            out = Outcome(result, before, dump(state), state)
            if result.exit_code == 0:
                out.readback = [
                    runner.invoke(app, ["--state-dir", str(state), *cmd]) for cmd in READBACK
                ]
            return out
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    return run


def assert_clean(out: Outcome, valid: bool = False) -> None:
    """Success, or one line + exit 2 with the store unchanged; never a traceback."""
    r = out.result
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output, r.output
    if valid:
        assert out.code == 0, (out.code, r.stderr)
    if out.code == 0:
        assert r.stderr == "", r.stderr
        for cmd, res in zip(READBACK, out.readback, strict=True):
            assert res.exit_code == 0, (cmd, res.exit_code, res.output, res.exception)
        # A zone index (fe80::1%eth0) means nothing in a pool, egress, next hop, DNS, peer address.
        stored = [
            line
            for line in out.after
            if line.startswith(('INSERT INTO "tenants"', 'INSERT INTO "peers"'))
        ]
        assert not any("%" in line for line in stored), stored
        return
    assert out.code == 2, (out.code, r.stderr)
    assert r.stderr.endswith("\n") and r.stderr.count("\n") == 1, repr(r.stderr)
    assert len(r.stderr.splitlines()) == 1, repr(r.stderr)
    assert r.stderr.startswith("wggw: error: ") and "error: unexpected" not in r.stderr, r.stderr
    assert out.after == out.before, "a failed command changed the store"


# --- strategies ------------------------------------------------------------------

# Any unicode the shell can pass (no NUL), with a bias to the characters that matter here.
TEXT = st.text(st.characters(blacklist_characters="\x00"), max_size=40)
NEAR = st.text(
    st.sampled_from(string.ascii_letters + string.digits + "-_./:[]%, \t\n" + "é٣²\u2028"),
    max_size=30,
)
HUGE = st.sampled_from(
    [
        "9" * 30,
        "9" * 400,
        "1" + "0" * 4400,
        "-" + "9" * 25,
        "18446744073709551616",
        "9223372036854775808",
        "-9223372036854775809",
    ]
)
ANY_TEXT = st.one_of(TEXT, NEAR, HUGE)

VALID_NAME = st.from_regex(r"\A[A-Za-z][A-Za-z0-9_-]{0,14}\Z")
NAME = st.one_of(
    VALID_NAME, ANY_TEXT, st.sampled_from(["a" * 16, "-x", "x y", "wg0\n", "ä", "..", "a/b"])
)

INT_TEXT = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.integers(0, 70000).map(str),
    ANY_TEXT,
    st.sampled_from(["--5", "-0", "+5", "0x10", "1e3", "1_000", " 5", "٥", "5.0", ""]),
)

V4 = st.ip_addresses(v=4).map(str)
V6 = st.ip_addresses(v=6).map(str)
IP_EDGE = st.sampled_from(
    [
        "0.0.0.0",
        "255.255.255.255",
        "127.0.0.1",
        "224.0.0.1",
        "::",
        "::1",
        "ff02::1",
        "::ffff:198.51.100.7",
        "fe80::1%eth0",
        "fe80::1%25",
        "2001:db8::1%x",
        "2001:db8::1 ",
        " 198.51.100.9",
        "198.51.100.09",
        "1.2.3",
        "::ffff:1.2.3.4.5",
        "2001:db8:::1",
        "[2001:db8::1]",
        "198.51.100.1/32",
    ]
)
IP = st.one_of(V4, V6, IP_EDGE, ANY_TEXT)


@st.composite
def networks(draw) -> str:
    version = draw(st.sampled_from([4, 6]))
    bits = 32 if version == 4 else 128
    prefix = draw(st.integers(0, bits))
    addr = draw(st.ip_addresses(v=version))
    host_bits = draw(st.booleans())
    import ipaddress

    net = ipaddress.ip_network(f"{addr}/{prefix}", strict=False)
    return f"{addr if host_bits else net.network_address}/{prefix}"


CIDR_EDGE = st.sampled_from(
    [
        "::/0",
        "0.0.0.0/0",
        "::/128",
        "::1/128",
        "::ffff:0:0/96",
        "64:ff9b::/96",
        "fe80::/10",
        "fe80::%eth0/64",
        "2001:db8::/126",
        "2001:db8::/127",
        "2001:db8::/128",
        "fd00::/8",
        "10.0.0.0/30",
        "10.0.0.0/31",
        "10.0.0.0/33",
        "10.0.0.0/-1",
        "10.0.0.0/ 24",
        "10.0.0.0/024",
        "10.0.0.0/255.255.255.0",
        "10.0.0.0/0.0.0.255",
        "2001:db8::/64/64",
        "2001:db8::/1e2",
        "198.51.100.0/24\n",
        "fd00:20::/64%eth0",
    ]
)
CIDR = st.one_of(networks(), CIDR_EDGE, ANY_TEXT)

KEY_EDGE = st.sampled_from(
    [
        ALICE_KEY,
        "A" * 43 + "=",
        "A" * 44,
        "A" * 43,
        base64.b64encode(b"\x00" * 31).decode(),
        base64.b64encode(b"\x00" * 33).decode(),
        base64.urlsafe_b64encode(b"\xfb" * 32).decode(),
        " " + base64.b64encode(b"\x01" * 32).decode() + "\n",
        base64.b64encode(b"\x02" * 32).decode()[:-1],
    ]
)
KEY = st.one_of(
    st.binary(min_size=0, max_size=40).map(lambda b: base64.b64encode(b).decode()),
    KEY_EDGE,
    ANY_TEXT,
)

DURATION_EDGE = st.sampled_from(
    [
        "30d",
        "0d",
        "0",
        "1w2d3h4m5s",
        "90m",
        "12H",
        " 7d ",
        "d",
        "5",
        "-5d",
        "5 d",
        "٣d",
        "1y",
        "9" * 25 + "w",
        "9" * 14 + "s",
        "292277026596y",
        "99999999999w",
        "default",
        "10000000000d",
        "1e9s",
    ]
)
DURATION = st.one_of(
    DURATION_EDGE,
    st.integers(0, 2**64).map(lambda n: f"{n}d"),
    st.from_regex(r"\A([0-9]{1,25}[wdhmsWDHMS]){1,4}\Z"),
    ANY_TEXT,
)
WHEN = st.one_of(
    DURATION,
    st.datetimes().map(lambda d: d.isoformat()),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()) if False else st.nothing(),
    st.sampled_from(
        [
            "9999-12-31T23:59:59",
            "9999-12-31T23:59:59-23:59",
            "0001-01-01",
            "2099-01-01T00:00:00+14:00",
            "2099-01-01Z",
            "2099-13-01",
            "tomorrow",
        ]
    ),
)

HOST = st.one_of(
    st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z]{2,6}){0,3}\Z"), V4, ANY_TEXT
)
ENDPOINT = st.one_of(
    st.builds(lambda h, p: f"{h}:{p}", HOST, INT_TEXT),
    st.builds(lambda h, p: f"[{h}]:{p}", st.one_of(V6, IP_EDGE, ANY_TEXT), INT_TEXT),
    st.sampled_from(
        [
            "h:1",
            "h:65535",
            "h:65536",
            "h:0",
            "[::1]:1",
            "[fe80::1%eth0]:51820",
            "2001:db8::1:5",
            "[2001:db8::1]",
            ":51820",
            "h:",
            "h:٥١٨٢٠",
            "h:+5",
            "-h:1",
            "h-.x:1",
            "a" * 64 + ":1",
            ".:1",
            "h..x:1",
            "[::ffff:1.2.3.4]:9",
        ]
    ),
    ANY_TEXT,
)
DEVICE = st.one_of(st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}\Z"), NAME)
REF = st.one_of(
    st.builds(lambda t, p: f"{t}/{p}", st.sampled_from(["acme", "nobody"]), NAME),
    st.builds(lambda t, p: f"{t}/{p}", NAME, NAME),
    ANY_TEXT,
)


def mostly(valid, anything) -> st.SearchStrategy[str]:
    """Usually a valid value, so that the other fields' checks are reached too."""
    return st.one_of(valid, valid, anything)


FREE_NAME = VALID_NAME.filter(lambda n: n not in ("acme", "alice", "wg0"))
GOOD_KEY = (
    st.binary(min_size=32, max_size=32)
    .filter(lambda b: b != bytes(range(32)))
    .map(lambda b: base64.b64encode(b).decode())
)
GOOD_PORT = st.integers(1, 65535).filter(lambda p: p != 51820).map(str)
GOOD_ENDPOINT = st.one_of(
    st.builds(
        lambda h, p: f"{h}:{p}",
        st.from_regex(r"\A[a-z]([a-z0-9-]{0,10}[a-z0-9])?\Z"),
        st.integers(1, 65535),
    ),
    st.builds(lambda h, p: f"[{h}]:{p}", V6, st.integers(1, 65535)),
)
GOOD_POOL4 = st.builds(
    lambda a, b, n: f"10.{a}.{b}.0/{n}", st.integers(11, 255), st.integers(0, 255), st.just(24)
)
GOOD_POOL6 = st.integers(0x11, 0xFFFF).map(lambda n: f"fd00:{n:x}::/64")
GOOD_EGRESS4 = st.integers(1, 254).map(lambda n: f"198.51.100.{n}")
GOOD_EGRESS6 = st.integers(1, 0xFFFF).map(lambda n: f"2001:db8:1::{n:x}")
GOOD_DURATION = st.integers(1, 3650).map(lambda d: f"{d}d")


def opt(flag: str, values) -> st.SearchStrategy[list[str]]:
    """An option left out, or given once or twice (repeatable options, or a repeated one)."""
    return st.one_of(
        st.just([]),
        values.map(lambda v: [flag, v]),
        st.tuples(values, values).map(lambda vv: [flag, vv[0], flag, vv[1]]),
    )


# --- properties over arbitrary input -----------------------------------------------


@FUZZ
@given(
    name=mostly(FREE_NAME, NAME),
    port=mostly(GOOD_PORT, INT_TEXT),
    endpoint=mostly(GOOD_ENDPOINT, ENDPOINT),
    mtu=opt("--mtu", mostly(st.integers(1280, 9000).map(str), INT_TEXT)),
)
@example(name="A", port="1", endpoint="0:1" + "0" * 4400, mtu=[])  # was: int() ValueError, exit 1
def test_interface_add(wggw, name, port, endpoint, mtu):
    assert_clean(
        wggw("interface", "add", name, "--listen-port", port, "--endpoint", endpoint, *mtu)
    )


@FUZZ
@given(
    name=mostly(FREE_NAME, NAME),
    pools=st.one_of(
        st.lists(CIDR, max_size=3),
        st.lists(mostly(GOOD_POOL4, CIDR), min_size=1, max_size=1),
        st.tuples(mostly(GOOD_POOL4, CIDR), mostly(GOOD_POOL6, CIDR)).map(list),
    ),
    egress=st.one_of(
        st.lists(IP, max_size=3),
        st.lists(mostly(GOOD_EGRESS4, IP), min_size=1, max_size=1),
        st.tuples(mostly(GOOD_EGRESS4, IP), mostly(GOOD_EGRESS6, IP)).map(list),
    ),
    rest=st.tuples(
        opt("--interface", mostly(st.just("wg0"), NAME)),
        opt("--uplink", DEVICE),
        opt("--via", IP),
        opt("--rotate-after", mostly(GOOD_DURATION, DURATION)),
    ),
)
@example(
    name="b",
    pools=["10.20.0.0/24", "fd00:20::/64"],
    egress=["198.51.100.1", "2001:db8::1%x"],
    rest=([], [], [], []),
)  # was: stored with its zone index, exit 0
@example(name="b", pools=["fd00:30::%eth0/64"], egress=["2001:db8::3"], rest=([], [], [], []))
def test_tenant_add(wggw, name, pools, egress, rest):
    args = [a for p in pools for a in ("--pool", p)] + [a for e in egress for a in ("--egress", e)]
    assert_clean(wggw("tenant", "add", name, *args, *[a for part in rest for a in part]))


@FUZZ
@given(name=mostly(st.just("acme"), NAME), rotate_after=DURATION)
@example(name="acme", rotate_after="200000000000000D")  # was: OverflowError in SQLite, exit 1
@example(name="acme", rotate_after="9" * 5000 + "d")  # int() refuses > 4300 digits
def test_tenant_set(wggw, name, rotate_after):
    assert_clean(wggw("tenant", "set", name, "--rotate-after", rotate_after))


@FUZZ
@given(
    ref=mostly(FREE_NAME.map(lambda n: f"acme/{n}"), REF),
    rest=st.tuples(
        opt("--public-key", mostly(GOOD_KEY, KEY)),
        opt("--keepalive", mostly(st.integers(0, 65535).map(str), INT_TEXT)),
        opt("--dns", mostly(GOOD_EGRESS4, IP)),
        opt("--expires", mostly(GOOD_DURATION, WHEN)),
    ),
)
@example(
    ref="acme/a", rest=([], [], [], ["--expires", "9999-12-31T23:59:59-23:59"])
)  # was: year 10000
def test_peer_add(wggw, ref, rest):
    assert_clean(wggw("peer", "add", ref, *[a for part in rest for a in part]))


@FUZZ
@given(
    ref=st.one_of(st.just("acme/alice"), REF), command=st.sampled_from(["show", "remove", "config"])
)
def test_peer_commands_taking_a_ref(wggw, ref, command):
    assert_clean(wggw("peer", command, ref))


@FUZZ
@given(
    older=opt("--older-than", DURATION),
    grace=opt("--grace", DURATION),
    scope=st.one_of(
        st.just([]),
        opt("--tenant", st.one_of(st.just("acme"), NAME)),
        opt("--peer", st.one_of(st.just("acme/alice"), REF)),
    ),
    dry_run=st.sampled_from([[], ["--dry-run"]]),
)
def test_rotate_options(wggw, older, grace, scope, dry_run):
    assert_clean(wggw("rotate", *older, *grace, *scope, *dry_run))


@FUZZ
@given(
    command=st.sampled_from(
        [
            ["tenant", "show"],
            ["tenant", "remove"],
            ["interface", "show"],
            ["interface", "remove"],
            ["export", "wg-quick"],
        ]
    ),
    name=NAME,
)
def test_commands_taking_a_name(wggw, command, name):
    assert_clean(wggw(*command, name))


def _peer_section(
    key: str, allowed: str, psk: str | None, keepalive: str | None, comment: str | None
) -> str:
    lines = [f"# {comment}"] if comment is not None else []
    lines += ["[Peer]", f"PublicKey = {key}", f"AllowedIPs = {allowed}"]
    lines += [f"PresharedKey = {psk}"] if psk is not None else []
    lines += [f"PersistentKeepalive = {keepalive}"] if keepalive is not None else []
    return "\n".join(lines)


LINE_TEXT = st.text(st.characters(blacklist_characters="\x00\n\r"), max_size=30)


def ONE_LINE(s):
    return "\n" not in s and "\r" not in s


GOOD_ALLOWED = st.builds(
    lambda a, b: f"10.10.0.{a}/32" + ("" if b is None else f", fd00:10::{b:x}/128"),
    st.integers(2, 254),
    st.one_of(st.none(), st.integers(2, 0xFFFF)),
)
PEER_SECTION = st.builds(
    _peer_section,
    key=mostly(GOOD_KEY, st.one_of(KEY, LINE_TEXT).filter(ONE_LINE)),
    allowed=mostly(
        GOOD_ALLOWED,
        st.one_of(
            st.sampled_from(
                [
                    "10.10.0.5/32",
                    "10.10.0.5/32, fd00:10::5/128",
                    "10.10.0.1/32",
                    "10.10.0.0/24",
                    "10.99.0.5/32",
                    "",
                    "fd00:10::5",
                    "10.10.0.5/32,10.10.0.6/32",
                    "10.10.0.5/32,,",
                    "10.10.0.255/32",
                    "fd00:10::/128",
                    "10.10.0.5/32, 10.10.0.5/32",
                ]
            ),
            CIDR.filter(ONE_LINE),
        ),
    ),
    psk=st.one_of(st.none(), GOOD_KEY, KEY.filter(ONE_LINE)),
    keepalive=st.one_of(st.none(), st.integers(0, 65535).map(str), INT_TEXT.filter(ONE_LINE)),
    comment=st.one_of(st.none(), FREE_NAME.map(lambda n: f"Name = acme/{n}"), LINE_TEXT),
)
WG_FILE = st.one_of(
    st.lists(PEER_SECTION, max_size=3).map(
        lambda peers: (
            "[Interface]\nPrivateKey = "
            + "A" * 43
            + "=\nListenPort = 51820\n\n"
            + "\n\n".join(peers)
        )
    ),
    st.text(max_size=200),
    st.binary(max_size=100),
)


@FUZZ
@given(content=WG_FILE, tenant=mostly(st.just("acme"), NAME))
@example(
    content="[Interface]\nPrivateKey = "
    + "A" * 43
    + "=\n\n"
    + _peer_section(base64.b64encode(b"\x07" * 32).decode(), "10.10.0.5/32", None, "abc", None),
    tenant="acme",
)  # int()
@example(
    content="[Interface]\nPrivateKey = "
    + "A" * 43
    + "=\n\n[Peer]\nPublicKey = \nAllowedIPs = 10.10.0.5/32"
    "\n\n[Peer]\nPublicKey = ,\nAllowedIPs = 10.10.0.5/32",
    tenant="acme",
)  # was: TypeError in wgconfig
@example(content="[Interface]\n\n# \ud800\n[Peer]\nPublicKey = \n", tenant="acme")  # not UTF-8
def test_import_wg_quick(wggw, content, tenant):
    assert_clean(
        wggw(
            "import", "wg-quick", "{dir}/wg0.conf", "--tenant", tenant, files={"wg0.conf": content}
        )
    )


# --- properties over valid input: these must succeed --------------------------------


@FUZZ
@given(
    name=FREE_NAME,
    port=st.integers(1, 65535).filter(lambda p: p != 51820),
    endpoint=st.one_of(
        st.builds(
            lambda h, p: f"{h}:{p}",
            st.from_regex(r"\A[a-z]([a-z0-9-]{0,10}[a-z0-9])?\Z"),
            st.integers(1, 65535),
        ),
        st.builds(lambda h, p: f"[{h}]:{p}", V6, st.integers(1, 65535)),
    ),
    mtu=st.one_of(st.none(), st.integers(1280, 9000)),
)
def test_valid_interface_add_succeeds(wggw, name, port, endpoint, mtu):
    out = wggw(
        "interface",
        "add",
        name,
        "--listen-port",
        str(port),
        "--endpoint",
        endpoint,
        *([] if mtu is None else ["--mtu", str(mtu)]),
    )
    assert_clean(out, valid=True)
    assert any(f"INSERT INTO \"interfaces\" VALUES('{name}'," in line for line in out.after)


@FUZZ
@given(
    name=FREE_NAME,
    third=st.integers(11, 255),
    prefix=st.integers(16, 30),
    egress=st.integers(1, 254),
    v6=st.integers(0x11, 0xFFFF),
    rotate=st.one_of(st.none(), st.integers(1, 3650).map(lambda d: f"{d}d")),
)
def test_valid_tenant_add_succeeds(wggw, name, third, prefix, egress, v6, rotate):
    import ipaddress

    pool4 = ipaddress.ip_network(f"10.{third}.0.0/{prefix}", strict=False)
    out = wggw(
        "tenant",
        "add",
        name,
        "--pool",
        str(pool4),
        "--pool",
        f"fd00:{v6:x}::/64",
        "--egress",
        f"198.51.100.{egress}",
        "--egress",
        f"2001:db8:1::{egress:x}",
        *([] if rotate is None else ["--rotate-after", rotate]),
    )
    assert_clean(out, valid=True)


@FUZZ
@given(
    name=FREE_NAME,
    keepalive=st.one_of(st.none(), st.integers(0, 65535)),
    dns=st.lists(st.sampled_from(["198.51.100.53", "2001:db8::53", "192.0.2.1"]), max_size=2),
    expires=st.one_of(st.none(), st.integers(1, 10**4).map(lambda n: f"{n}d")),
    own_key=st.one_of(
        st.none(), st.binary(min_size=32, max_size=32).filter(lambda b: b != bytes(range(32)))
    ),
)
def test_valid_peer_add_succeeds(wggw, name, keepalive, dns, expires, own_key):
    args = ["peer", "add", f"acme/{name}", *[a for d in dns for a in ("--dns", d)]]
    args += [] if keepalive is None else ["--keepalive", str(keepalive)]
    args += [] if expires is None else ["--expires", expires]
    args += [] if own_key is None else ["--public-key", base64.b64encode(own_key).decode()]
    assert_clean(wggw(*args), valid=True)


def test_durations_take_ascii_digits_only():
    """Found while reading what the fuzzer accepted: '٣d' (Arabic-Indic three) was 3 days."""
    from wggw.core import validate
    from wggw.core.errors import ValidationError

    for text in ("٣d", "１d", "3d٣h"):
        with pytest.raises(ValidationError):
            validate.duration("grace", text)
    assert validate.duration("grace", "3d") == 3 * 86400


def test_import_refuses_a_key_in_two_peer_sections(wggw):
    """Found while reading what the fuzzer accepted: wgconfig keys peers by PublicKey, so the
    second section silently replaced the first and one peer was lost without a word."""
    key = base64.b64encode(b"\x05" * 32).decode()
    text = (
        "[Interface]\nPrivateKey = "
        + "A" * 43
        + "=\n"
        + "\n".join(f"[Peer]\nPublicKey = {key}\nAllowedIPs = 10.10.0.{n}/32" for n in (5, 6))
    )
    out = wggw("import", "wg-quick", "{dir}/wg0.conf", "--tenant", "acme", files={"wg0.conf": text})
    assert_clean(out)
    assert out.code == 2 and f"PublicKey {key} is in two [Peer] sections" in out.result.stderr

"""Print planned changes as an operator reads them (pure): one `[#] ...` line per change,
and with `verbose` also the exact text a change hands to a tool, as a shell here-document
that can be pasted and run again (wg-quick echoes its commands the same way).

Only the nftables steps carry such a text today: it is the whole `nft -f` transaction,
which holds no secret (pools, egress addresses and interface names only).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from wggw.core.model import State
from wggw.core.nftables import render
from wggw.core.plan import Change, DeleteNft, ReplaceNft

HEREDOC_END = "WGGW_NFT"


def nft_text(change: Change) -> str | None:
    """The exact text `nft -f` is given for this change, or None for a non-nft change."""
    if isinstance(change, ReplaceNft):
        return change.spec.text
    if isinstance(change, DeleteNft):
        return render(State()).text  # the same "create, then delete" pair backends/nft loads
    return None


def script(change: Change) -> list[str]:
    """The re-runnable shell form of what the change runs (empty for a change without one)."""
    text = nft_text(change)
    if text is None:
        return []
    # A quoted delimiter: the shell expands nothing inside, so `$`, `@` and `{}` pass as is.
    if HEREDOC_END in text.splitlines():  # cannot happen with rendered tables; never misquote
        raise ValueError(f"nft text contains the here-document delimiter {HEREDOC_END}")
    return [f"nft -f - <<'{HEREDOC_END}'", *text.rstrip("\n").split("\n"), HEREDOC_END]


def lines(
    changes: Iterable[Change], verbose: bool = False, line: Callable[[Change], str] = str
) -> list[str]:
    """Every change's `[#]` line (`line`: the host's wording), each followed by its script
    when `verbose`."""
    out: list[str] = []
    for change in changes:
        out.append(line(change))
        if verbose:
            out.extend(script(change))
    return out


class VerboseEcho:
    """An echo callback that also prints each change's script: `echo_change` asks for it."""

    verbose = True

    def __init__(self, echo: Callable[[str], None]):
        self.echo = echo

    def __call__(self, line: str) -> None:
        self.echo(line)


def echo_change(
    echo: Callable[[str], None] | None, change: Change, line: str | None = None
) -> None:
    """What a System's `apply` prints before it applies `change` (`line`: the host's own
    wording of its `[#]` line, e.g. wireguard-go instead of `ip link add`)."""
    if echo is None:
        return
    echo(line or str(change))
    if getattr(echo, "verbose", False):
        for line in script(change):
            echo(line)

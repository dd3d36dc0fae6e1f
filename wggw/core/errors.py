"""The one error hierarchy of wggw and the exit code each class maps to.

Lower-level errors (NetlinkError, OSError, CalledProcessError, sqlite3.Error) are
wrapped into these with the object they concern named in the message, so the CLI
can print one line and exit with a documented code.
"""

from __future__ import annotations

# Documented exit codes (README "Exit codes").
EXIT_OK = 0
EXIT_ERROR = 1  # runtime failure: kernel/backend error, apply failed, drift after apply
EXIT_USAGE = 2  # bad input, validation failure, unknown object (store unchanged)
EXIT_PLAN_CHANGES = 2  # `plan --detailed-exitcode`: changes pending
EXIT_NOTIFY_FAILED = 3  # `rotate`: keys rotated and applied, but a --notify command failed
EXIT_LOCKED = 75  # another wggw run holds the lock (EX_TEMPFAIL): cron retries next time
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it
EXIT_PATH_WRONG = 4  # `status --check`: some tenant's packets would not take its own path
EXIT_HOST_CONFLICT = 78  # the store conflicts with the host, e.g. an egress IP that is the
#                          uplink's next hop (EX_CONFIG); nothing was changed
EXIT_PLAN_USAGE = 64  # `plan --detailed-exitcode`: bad input (EX_USAGE), not read as "changes"
EXIT_NOPERM = 77  # not allowed: needs root (CAP_NET_ADMIN) or a path it may write (EX_NOPERM)
EXIT_UNAVAILABLE = 69  # the PostgreSQL store cannot be reached (EX_UNAVAILABLE): retry later
EXIT_AUDIT_BROKEN = 5  # `audit verify`: a record was edited, deleted, reordered or cut off


def plan_detailed_code(code: int) -> int:
    """The exit code of `plan --detailed-exitcode` for an error that would exit `code`
    elsewhere: there 2 means "changes pending", so a usage error must not exit 2."""
    return EXIT_PLAN_USAGE if code == EXIT_USAGE else code


class WggwError(Exception):
    """Base class; `exit_code` is what the CLI exits with."""

    exit_code = EXIT_ERROR


class ValidationError(WggwError):
    """Bad input: names the field and the problem. Nothing was changed."""

    exit_code = EXIT_USAGE

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class NotFoundError(ValidationError):
    """An unknown tenant, peer or interface was named."""


class HostConflictError(ValidationError):
    """What the store asks for conflicts with the host (an egress IP that is the next hop,
    or an address wggw did not add). Found before any change: nothing was changed."""

    exit_code = EXIT_HOST_CONFLICT


class LockBusyError(WggwError):
    """Another wggw process held the state lock for longer than the bounded wait."""

    exit_code = EXIT_LOCKED


class PrivilegeError(WggwError):
    """The command needs rights this process lacks (CAP_NET_ADMIN, or access to a path)."""

    exit_code = EXIT_NOPERM


def permission_error(e: PermissionError) -> PrivilegeError:
    """An OSError EACCES/EPERM that reached the CLI, as one line that says what to do."""
    what = f" on {e.filename}" if e.filename else ""
    return PrivilegeError(
        f"permission denied{what}: wggw needs root (CAP_NET_ADMIN and its state "
        "dir); run it as root, or pass --state-dir DIR that you may write"
    )


class StoreError(WggwError):
    """The state store is unreadable, damaged or of an unknown schema version."""


class StoreUnavailableError(StoreError):
    """The database server of the store cannot be reached (down, refused, timed out); nothing
    was changed, and the same command may succeed later."""

    exit_code = EXIT_UNAVAILABLE


class BackendError(WggwError):
    """A kernel/userspace backend failed; the message names the object."""


class BackendUnavailableError(BackendError):
    """The requested backend cannot run here (e.g. no WireGuard module, no wireguard-go)."""


class VerifyError(WggwError):
    """After apply, observing again still shows differences from the desired state."""


class FleetWaitError(WggwError):
    """A gateway of the fleet did not report a change applied within the wait (its agent is
    down, cut off from the store, or failing); the message names it and its last report."""

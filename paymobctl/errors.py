"""The one error family of paymobctl and the exit codes it maps to (stdlib only)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented process exit codes; every command uses these and only these."""

    OK = 0
    FAILED = 1  # a check or a verification failed, a callback was not accepted, a payment declined
    USAGE = 2  # bad arguments, bad configuration, bad input file, unusable local store
    API = 3  # Paymob (or the sandbox) answered with an error, or the network failed
    TIMEOUT = 4  # a wait ran out (`deposit --wait --timeout`)
    INTERNAL = 70  # a paymobctl bug (never an expected failure)
    INTERRUPTED = 130  # Ctrl-C


class PaymobctlError(Exception):
    """Base of every expected failure: carries a message, an optional hint and an exit code.

    The message says what is wrong; the hint says what to do next. The CLI prints both on one
    line and exits with ``exit_code``; nothing of this family ever shows a traceback.
    """

    exit_code: ExitCode = ExitCode.USAGE
    reported: bool = False  # the command already showed it: the CLI only sets the exit code

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} — {self.hint}"
        return self.message


class UsageError(PaymobctlError):
    """A bad argument or input value (exit 2)."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """A configuration problem: names the file and key where it can (exit 2)."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        path: str | None = None,
        key: str | None = None,
    ) -> None:
        where = ""
        if path and key:
            where = f"{path}: {key}: "
        elif path:
            where = f"{path}: "
        elif key:
            where = f"{key}: "
        super().__init__(f"{where}{message}", hint=hint)
        self.path = path
        self.key = key


class StoreError(UsageError):
    """The local SQLite store cannot be used (corrupt, unwritable, too new) (exit 2)."""


class VerificationFailed(PaymobctlError):
    """A check or verification failed (exit 1)."""

    exit_code = ExitCode.FAILED


class ApiError(PaymobctlError):
    """Paymob (or the sandbox) rejected a call (exit 3)."""

    exit_code = ExitCode.API

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        status: int | None = None,
        body: object = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.body = body


class NetworkError(PaymobctlError):
    """A remote end could not be reached or did not answer in time (exit 3)."""

    exit_code = ExitCode.API


class TunnelError(NetworkError):
    """The ngrok tunnel could not be opened (exit 3 when a tunnel is required)."""


class WaitTimedOut(PaymobctlError):
    """A wait ran out before the awaited outcome (exit 4)."""

    exit_code = ExitCode.TIMEOUT

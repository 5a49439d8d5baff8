"""The one exception family of tvmx. `cli.main` turns these into `tvmx: error: ...` lines."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    USER_ERROR = 1  # bad model, target, option value
    USAGE = 2  # click's own code for bad command lines
    COMMAND_FAILED = 3  # an external tool returned non-zero
    GUEST_FAILURE = 4  # the program on the simulator trapped or exited non-zero
    MISMATCH = 5  # `tvmx verify`: outputs outside tolerance
    INTERNAL = 70  # a bug in tvmx (EX_SOFTWARE)


class TvmxError(Exception):
    """Error caused by the user's input or environment; carries a hint for fixing it."""

    exit_code = ExitCode.USER_ERROR

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class InputError(TvmxError):
    """Missing or malformed model, target or input file."""


class UnsupportedError(TvmxError):
    """The model uses something tvmx cannot compile (an op, a dynamic shape, a dtype)."""


class ToolNotFoundError(TvmxError):
    """A required external tool (compiler, simulator, dtc) is not installed."""


class CommandFailedError(TvmxError):
    exit_code = ExitCode.COMMAND_FAILED


class GuestError(TvmxError):
    """The simulated program trapped or returned a non-zero exit code."""

    exit_code = ExitCode.GUEST_FAILURE

    def __init__(self, message: str, hint: str | None = None, guest_exit_code: int = 1) -> None:
        super().__init__(message, hint)
        self.guest_exit_code = guest_exit_code


class MismatchError(TvmxError):
    exit_code = ExitCode.MISMATCH


class UsageError(TvmxError):
    """Options that contradict each other or are out of range (click's own usage errors exit alike)."""

    exit_code = ExitCode.USAGE


def one_line(text: str, limit: int = 300) -> str:
    """`text` (another library's message, perhaps many lines) as one line of at most `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."

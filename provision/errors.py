"""Typed errors, the exit-code table and the one rule that combines exit codes.

Library code raises a :class:`ForgeError` subclass carrying a message and an
optional hint; only the CLI boundary (:mod:`provision.cli.main`) turns one
into text on stderr and an exit code. ``docs/exit-codes.md`` documents the
table and the precedence below; ``tests/cli/test_exit_codes.py`` keeps the
two in step.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class ExitCode(enum.IntEnum):
    OK = 0
    CHECKS_FAILED = 1
    BAD_INPUT = 2
    DEPLOY_FAILED = 3
    HOSTS_UNREACHABLE = 4
    INTERNAL_ERROR = 70      # a bug in forge (sysexits.h EX_SOFTWARE), never a verdict
    TIMEOUT = 124
    INTERRUPTED = 130        # Ctrl-C (SIGINT)
    TERMINATED = 143         # SIGTERM (systemd stop, kill): cleaned up like Ctrl-C


# When several outcomes apply, the first of these present wins (bad input first:
# nothing trustworthy was measured; then unreachable: a node we could not see may
# hide a failure; then a failed deploy, a timeout, a failed check).
PRECEDENCE: tuple[ExitCode, ...] = (
    ExitCode.INTERNAL_ERROR, ExitCode.TERMINATED, ExitCode.INTERRUPTED, ExitCode.BAD_INPUT,
    ExitCode.HOSTS_UNREACHABLE, ExitCode.DEPLOY_FAILED, ExitCode.TIMEOUT,
    ExitCode.CHECKS_FAILED, ExitCode.OK,
)


def combine(codes: Iterable[ExitCode | int]) -> ExitCode:
    """The one exit code for a run with several outcomes (0 when there are none)."""
    present = {ExitCode(int(c)) for c in codes}
    for code in PRECEDENCE:
        if code in present:
            return code
    return ExitCode.OK


def unreadable_number(exc: BaseException) -> str | None:
    """What was wrong with a number of the input, when ``exc`` is Python refusing it: too
    large for a float (``OverflowError``) or past ``int()``'s limit of 4,300 digits (a
    ``ValueError`` known only by its text, CPython's guard against quadratic conversion);
    None for any other error."""
    if isinstance(exc, OverflowError):
        return f"a number in the input is out of range ({exc})"
    if isinstance(exc, ValueError) and "integer string conversion" in str(exc):
        return ("a number in the input has more digits than any tool prints "
                f"({str(exc).split(';')[0]})")
    return None


class ForgeError(Exception):
    """Base of every error forge reports to a user (never with a traceback)."""

    exit_code: ExitCode = ExitCode.BAD_INPUT

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class InputError(ForgeError):
    """A file, flag or document the user gave us is wrong."""

    exit_code = ExitCode.BAD_INPUT


def named_number_error(exc: BaseException, where: str) -> InputError | None:
    """The error naming ``where`` (a file, a node's output) that a reader raises when
    ``exc`` is Python refusing a number there (:func:`unreadable_number`), ``exc`` kept
    as its cause for ``--debug``; None for any other error (the reader re-raises it)."""
    number = unreadable_number(exc)
    if number is None:
        return None
    named = InputError(f"{where}: {number}")
    named.__cause__ = exc
    return named


class SpecError(InputError):
    """A site spec failed validation; carries every problem found, not just the first."""

    SHOWN = 100  # a spec with 100,000 bad addresses prints the first ones and a count

    def __init__(self, problems: list[str], *, source: str = "") -> None:
        self.problems = list(problems)
        head = f"{source}: " if source else ""
        noun = "problem" if len(problems) == 1 else "problems"
        lines = [f"  {p}" for p in problems[:self.SHOWN]]
        if len(problems) > self.SHOWN:
            lines.append(f"  ... and {len(problems) - self.SHOWN:,} more")
        super().__init__(f"{head}{len(problems)} {noun} in site spec:\n" + "\n".join(lines))


class DeployError(ForgeError):
    exit_code = ExitCode.DEPLOY_FAILED


class UnreachableError(ForgeError):
    exit_code = ExitCode.HOSTS_UNREACHABLE


class CommandTimeout(ForgeError):
    exit_code = ExitCode.TIMEOUT


class ChecksFailed(ForgeError):
    exit_code = ExitCode.CHECKS_FAILED


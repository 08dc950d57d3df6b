"""Typed errors and the exit-code table.

Library code raises a :class:`ForgeError` subclass carrying a message and an
optional hint; only the CLI boundary (:mod:`provision.cli.main`) turns one
into text on stderr and an exit code. The table is documented in
``docs/exit-codes.md``; keep the two in step.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    CHECKS_FAILED = 1
    BAD_INPUT = 2
    DEPLOY_FAILED = 3
    HOSTS_UNREACHABLE = 4
    TIMEOUT = 124
    INTERRUPTED = 130


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


class SpecError(InputError):
    """A site spec failed validation; carries every problem found, not just the first."""

    def __init__(self, problems: list[str], *, source: str = "") -> None:
        self.problems = list(problems)
        head = f"{source}: " if source else ""
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"{head}{len(problems)} {noun} in site spec:\n" + "\n".join(
            f"  {p}" for p in problems))


class DeployError(ForgeError):
    exit_code = ExitCode.DEPLOY_FAILED


class UnreachableError(ForgeError):
    exit_code = ExitCode.HOSTS_UNREACHABLE


class CommandTimeout(ForgeError):
    exit_code = ExitCode.TIMEOUT


class ChecksFailed(ForgeError):
    exit_code = ExitCode.CHECKS_FAILED

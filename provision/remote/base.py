"""What a launcher takes and returns: a command per node, a result per node."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

Status = Literal["ok", "failed", "timeout", "unreachable", "not-installed"]

#: shell and runtime wording of "the program does not exist" (sh, bash, env, slurmstepd)
_MISSING = re.compile(
    r"(?:^|\s)(?:exec: )?(\S+): (?:not found|command not found)|"
    r"execve\(\): (\S+): No such file or directory|"
    r"env: '?([^':\s]+)'?: No such file or directory", re.M)


@dataclass(frozen=True)
class Target:
    """Where a node is reached: its name in the spec and its SSH address."""

    name: str
    host: str
    port: int = 22
    user: str = "root"


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    timeout: float
    stdin: str | None = None


@dataclass(frozen=True)
class Result:
    node: str
    argv: tuple[str, ...]
    status: Status
    returncode: int | None
    stdout: str
    stderr: str
    duration_s: float = 0.0
    detail: str = ""

    @property
    def ran(self) -> bool:
        """The program ran to completion (whatever its exit code)."""
        return self.status in ("ok", "failed")


class Launcher(Protocol):
    name: str

    def run(self, commands: Mapping[str, Command]) -> dict[str, Result]: ...

    def close(self) -> None: ...


def missing_tool(returncode: int | None, stderr: str) -> str | None:
    """The program a shell or slurmstepd could not find, or None.

    Exit 127 is the shell's "command not found"; slurmstepd reports execve()
    failures with exit 2, so the message decides there.
    """
    m = _MISSING.search(stderr or "")
    if m and (returncode in (127, 2) or "execve()" in m.group(0)):
        return next(g for g in m.groups() if g)
    if returncode == 127:
        return "(unknown program)"
    return None


def classify(node: str, argv: tuple[str, ...], returncode: int, stdout: str, stderr: str,
             duration: float, timed_out: bool, timeout: float) -> Result:
    """A finished (or killed) process as a :class:`Result`."""
    if timed_out:
        return Result(node, argv, "timeout", None, stdout, stderr, duration,
                      f"killed after {timeout:g} s timeout")
    tool = missing_tool(returncode, stderr)
    if tool is not None:
        return Result(node, argv, "not-installed", returncode, stdout, stderr, duration,
                      f"{tool}: not installed")
    status: Status = "ok" if returncode == 0 else "failed"
    return Result(node, argv, status, returncode, stdout, stderr, duration,
                  "" if returncode == 0 else f"exit {returncode}")

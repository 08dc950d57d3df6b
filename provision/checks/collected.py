"""Checks built on the node-side collector (:mod:`provision.node_programs.collect`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from provision.checks.base import Check, Context, Raw
from provision.errors import InputError, named_number_error
from provision.remote.payload import python_program

COLLECTOR = "provision.node_programs.collect"


@dataclass(frozen=True)
class Collected:
    """The collector's JSON, as parsed by a check."""

    node: str
    hostname: str
    facts: dict[str, Any]
    tools: dict[str, str | None]
    commands: dict[str, dict[str, Any]]
    #: the request, echoed back: what the check asked for and expects (pure data)
    request: dict[str, Any]

    def output(self, name: str) -> str | None:
        """stdout of a command that ran, or None (missing, timed out)."""
        c = self.commands.get(name)
        if not c or c.get("missing") or c.get("timed_out"):
            return None
        out: str | None = c.get("stdout")
        return out

    def missing(self, name: str) -> str | None:
        c = self.commands.get(name) or {}
        miss: str | None = c.get("missing")
        return miss


def parse_collected(raw: Raw) -> Collected:
    """The collector's JSON object (pure); anything else is an error naming the node."""
    text = raw.stdout.strip()
    if not text:
        tail = (raw.stderr.strip().splitlines() or ["no output"])[-1]
        raise InputError(f"{raw.key}: the collector printed nothing ({tail[:200]})")
    try:
        doc = json.loads(text.splitlines()[-1])
    except json.JSONDecodeError as exc:
        raise InputError(f"{raw.key}: collector output is not JSON ({exc.msg})") from None
    except ValueError as exc:  # a number past int()'s limit
        if (named := named_number_error(exc, f"{raw.key}: collector output")) is None:
            raise
        raise named from exc
    if not isinstance(doc, dict) or doc.get("schema_version") != 1:
        raise InputError(f"{raw.key}: collector output has no schema_version 1")
    return Collected(raw.key, str(doc.get("hostname", "")), dict(doc.get("facts", {})),
                     dict(doc.get("tools", {})), dict(doc.get("commands", {})),
                     dict(doc.get("request", {})))


class CollectorCheck(Check):
    """A check whose node-side part is the collector with a request built from the plan."""

    def request(self, ctx: Context) -> dict[str, Any]:
        raise NotImplementedError

    def _program(self, ctx: Context) -> tuple[list[str], str]:
        return python_program(COLLECTOR, [], [json.dumps(self.request(ctx), sort_keys=True)],
                              python=ctx.python)

    def argv(self, ctx: Context) -> list[str]:
        return self._program(ctx)[0]

    def stdin(self, ctx: Context) -> str | None:
        return self._program(ctx)[1]

    def parse(self, raw: Raw) -> Any:
        return parse_collected(raw)


def command(argv: list[str], timeout: float = 60.0, **extra: Any) -> dict[str, Any]:
    return {"argv": argv, "timeout": timeout, **extra}

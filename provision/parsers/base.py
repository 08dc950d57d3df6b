"""What every tool parser shares: the parser declaration, error helpers and record building.

A parser is a pure function from text to a frozen result dataclass, plus a
pure function from that result to measurement records. Neither reads files,
starts processes or prints; :mod:`provision.cli.ingest` and the check engine
do that around them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provision import metrics
from provision.errors import InputError
from provision.measurement import Measurement

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CR_EOL = re.compile(r"\r+$", re.M)
_TAG_PREFIX = re.compile(r"^\[\d+,\d+\]<std(?:out|err)>:", re.M)
_NUM = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")


@dataclass(frozen=True)
class ToolParser:
    """The declaration of one tool's parser, as the registry holds it.

    ``parse(text, node=..., source_name=...)`` returns the tool's frozen
    result; ``measurements(result, check=None)`` turns it into records;
    ``detect(text)`` says whether ``text`` looks like this tool's output.
    """

    name: str
    description: str
    parse: Callable[..., Any]
    measurements: Callable[..., list[Measurement]]
    detect: Callable[[str], bool]
    #: every result in the text, for tools whose logs hold several runs (nccl-tests)
    parse_all: Callable[..., list[Any]] | None = None
    #: every record of the text as JSON lines, read in bulk (``forge ingest`` of large logs):
    #: ``jsonl(text, node=, source_name=, check=)`` -> ``.lines``, ``.runs``, ``.skipped``
    jsonl: Callable[..., Any] | None = None

    def results(self, text: str, *, node: str | None = None,
                source_name: str = "<stdin>") -> list[Any]:
        if self.parse_all is not None:
            return self.parse_all(text, node=node, source_name=source_name)
        return [self.parse(text, node=node, source_name=source_name)]


def parse_error(tool: str, source: str, line: int | None, why: str,
                hint: str | None = None) -> InputError:
    """One-line error naming the tool, the file and the line."""
    where = f"{source}:{line}" if line else source
    return InputError(f"{where}: cannot parse as {tool} output: {why}", hint=hint)


def require_text(tool: str, text: str, source: str) -> list[str]:
    """The lines of ``text`` (ANSI escapes and CRs removed); empty input is refused."""
    return require_clean(tool, text, source).split("\n")


def require_clean(tool: str, text: str, source: str) -> str:
    """``text`` cleaned (:func:`clean_text`); empty or binary input is refused."""
    if not text or text.isspace():
        raise parse_error(tool, source, None, "the file is empty")
    if "\x00" in text:
        raise parse_error(tool, source, None, "the file is binary, not tool output")
    return clean_text(text)


def clean_text(text: str) -> str:
    """``text`` without ANSI escapes, CRs at line ends and the per-line prefixes launchers
    add (``mpirun --tag-output``'s ``[1,0]<stdout>:``). Whole-text passes, each only when
    needed: a 50 MB log is 600,000 lines."""
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    if "\r" in text:
        text = _CR_EOL.sub("", text)
    if "<" in text and "]<std" in text:  # one byte first: memchr, 10x faster on 50 MB
        text = _TAG_PREFIX.sub("", text)
    return text


def resolve_node(tool: str, source: str, found: str | None, given: str | None) -> str:
    """The host the output names, else the one given with ``--node``, else an error."""
    if found:
        return found
    if given:
        return given
    raise InputError(
        f"{source}: {tool} output does not name its host",
        hint="pass --node NAME to say which node produced it")


def to_float(text: str) -> float | None:
    """A plain number, or None for N/A, [N/A], empty and other non-numbers."""
    t = text.strip()
    return float(t) if _NUM.match(t) else None


def leading_float(text: str) -> float | None:
    """The number at the start of ``"81559 MiB"``, ``"16x"``, ``"200 Gb/sec (4X HDR)"``."""
    m = re.match(r"\s*([-+]?\d+(?:\.\d+)?)", text)
    return float(m.group(1)) if m else None


def record(node: str, metric: str, value: float, *, check: str | None = None,
           **fields: Any) -> Measurement:
    """A measurement with the unit filled in from the metric registry when not given."""
    if "unit" not in fields:
        known = metrics.info(metric)
        if known is not None:
            fields["unit"] = known.unit
    return Measurement(node=node, metric=metric, value=float(value), check=check, **fields)


def fold_hosts(hosts: list[str]) -> str:
    """Host names folded as a node set where ClusterShell can, else comma-joined."""
    return _fold(tuple(hosts))


@functools.lru_cache(maxsize=1024)
def _fold(hosts: tuple[str, ...]) -> str:
    # cached: a log of thousands of runs names the same few host sets again and again
    from provision.nodes import fold
    try:
        return fold(list(hosts))
    except Exception:  # names with characters ClusterShell rejects ({host1} placeholders)
        return ",".join(hosts)

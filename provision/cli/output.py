"""Terminal output that degrades to plain text when stdout is not a TTY."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console


def console(stderr: bool = False) -> Console:
    """A rich console; plain (no colour, no box art) when not writing to a terminal."""
    from rich.console import Console  # rich costs start-up time: only commands that print

    stream = sys.stderr if stderr else sys.stdout
    is_tty = stream.isatty()
    con = Console(
        file=stream, force_terminal=None, no_color=not is_tty, highlight=False,
        soft_wrap=not is_tty, width=None if is_tty else 200,
    )
    con.on_broken_pipe = _reader_gone  # type: ignore[method-assign]
    return con


def _reader_gone() -> None:
    """rich would exit 1 ("checks failed"); let the CLI boundary treat it as the end of output."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    raise BrokenPipeError


def emit_json(obj: Any) -> None:
    import json  # only the commands that print JSON need it

    click.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))


def table_option(what: str) -> Any:
    """``--table jsonl|parquet|arrow``: the form in which a run writes its measurements."""
    from provision.measurement import TABLE_FORMATS

    return click.option(
        "--table", type=click.Choice(list(TABLE_FORMATS)), default="jsonl", show_default=True,
        help=f"Write {what} measurements as JSON Lines (measurements.jsonl), or as a "
             "Parquet / Arrow IPC table (measurements.parquet / .arrow): 20x smaller and "
             "several times faster for forge analyze at fleet scale (docs/measurements.md).")

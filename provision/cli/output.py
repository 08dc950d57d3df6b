"""Terminal output that degrades to plain text when stdout is not a TTY."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console


def console(stderr: bool = False) -> Console:
    """A rich console; plain (no colour, no box art) when not writing to a terminal."""
    stream = sys.stderr if stderr else sys.stdout
    is_tty = stream.isatty()
    return Console(
        file=stream, force_terminal=None, no_color=not is_tty, highlight=False,
        soft_wrap=not is_tty, width=None if is_tty else 200,
    )


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))

"""The `forge` entry point and the one error boundary.

Commands live in their own modules and are imported only when invoked, so
`forge --help` and `forge validate` stay fast however large forge grows.
Every :class:`~provision.errors.ForgeError` becomes a one-line message (plus
hint) and its exit code here; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import NoReturn

import click

from provision import __version__
from provision.errors import ExitCode, ForgeError

# name -> (module, attribute). Keep alphabetical within a family.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("provision.cli.spec_cmds", "validate"),
    "plan": ("provision.cli.spec_cmds", "plan"),
    "render": ("provision.cli.spec_cmds", "render"),
    "schema": ("provision.cli.spec_cmds", "schema"),
    "migrate": ("provision.cli.spec_cmds", "migrate"),
    "demo": ("provision.cli.demo", "demo"),
    "lab": ("provision.cli.lab", "lab"),
    "deploy": ("provision.cli.deploy", "deploy"),
    "check": ("provision.cli.check", "check"),
    "ingest": ("provision.cli.ingest", "ingest"),
    "analyze": ("provision.cli.analyze", "analyze"),
    "sweep": ("provision.cli.sweep", "sweep"),
    "history": ("provision.cli.history", "history"),
    "bmc": ("provision.cli.bmc", "bmc"),
    "rails": ("provision.cli.rails", "rails"),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        available = [
            name for name, (module, _) in COMMANDS.items()
            if importlib.util.find_spec(module) is not None
        ]
        return sorted(set(available) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        target = COMMANDS.get(cmd_name)
        if target is None or importlib.util.find_spec(target[0]) is None:
            return None
        module = importlib.import_module(target[0])
        command: click.Command = getattr(module, target[1])
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="forge")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """forge: site spec -> inventory -> deploy -> acceptance -> sweeps.

    \b
    Example:
      forge validate inventory/examples/small.yaml
      forge plan inventory/examples/small.yaml
      forge render inventory/examples/small.yaml -o site-inventory
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the CLI; map errors to exit codes (the only place that prints an error).

    Commands signal failure by raising a ForgeError or by returning an exit code.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = _debug_requested(args)
    try:
        rv = cli.main(args=args, prog_name="forge", standalone_mode=False)
    except ForgeError as exc:
        if debug:
            raise
        click.echo(f"forge: error: {exc.message}", err=True)
        if exc.hint:
            click.echo(f"  hint: {exc.hint}", err=True)
        sys.exit(int(exc.exit_code))
    except click.exceptions.Abort:
        click.echo("forge: interrupted", err=True)
        sys.exit(int(ExitCode.INTERRUPTED))
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(int(ExitCode.BAD_INPUT))
    except KeyboardInterrupt:
        click.echo("forge: interrupted", err=True)
        sys.exit(int(ExitCode.INTERRUPTED))
    except BrokenPipeError:
        sys.exit(int(ExitCode.OK))
    # a command may return an exit code (an int or ExitCode); anything else means success
    sys.exit(int(rv) if isinstance(rv, int) and not isinstance(rv, bool) else 0)

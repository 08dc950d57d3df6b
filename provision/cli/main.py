"""The `forge` entry point and the one error boundary.

Commands live in their own modules and are imported only when invoked; the
top-level ``--help`` lists them from the static table below, so `forge
--help` imports no command module at all (``tests/cli`` checks the table's
summaries against the commands' own docstrings).

Every error ends here: a :class:`~provision.errors.ForgeError` becomes a
one-line message (plus hint) and its exit code; an OS error names its path and
exits 2; anything else is a bug in forge and says so, with exit 70.
``--debug`` prints the traceback as well and keeps the same exit code.
"""

from __future__ import annotations

import gc
import os
import signal
import sys

# Ctrl-C or SIGTERM while the `forge` program is still importing: nothing has been
# written yet, so leave quietly with the documented code instead of a traceback.
# main() puts the real handlers in place before any command runs. (Only for the
# program itself: importing this module from other code changes no handler.)
# The cyclic garbage collector waits too: imports allocate tens of thousands of
# objects, none of them garbage, and its passes over them cost `forge validate` a few
# milliseconds; it resumes once the command's module is imported (LazyGroup.get_command).
if _AS_PROGRAM := (os.path.basename(sys.argv[0]) == "forge"  # python -m provision: its own
                   or sys.argv[0].endswith(os.path.join("provision", "__main__.py"))):
    signal.signal(signal.SIGINT, lambda _s, _f: os._exit(130))
    signal.signal(signal.SIGTERM, lambda _s, _f: os._exit(143))
    gc.disable()
    # numpy's bundled OpenBLAS starts one thread per CPU when numpy is imported, and each
    # spins before it sleeps: CPU time burnt for nothing, since forge does no BLAS work
    # (no matrix products; medians, sorts and sums do not use BLAS). On 2 CPUs that is
    # 0.08 s of a 0.16 s import; on a control host of 128 threads it is seconds
    # (numpy/numpy#29193, OpenMathLib/OpenBLAS#5171). A value the user set is kept.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import contextlib
import importlib
from typing import NoReturn

import click

from provision import __version__
from provision.errors import ExitCode, ForgeError, unreadable_number

BUG_REPORT = "this is a bug in forge: rerun with --debug and report the traceback"

# name -> (module, attribute, one-line summary for `forge --help`).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "validate": ("provision.cli.spec_cmds", "validate",
                 "Validate a site spec; list every problem with file:line:column."),
    "plan": ("provision.cli.spec_cmds", "plan",
             "Show what every node must look like and each acceptance threshold."),
    "render": ("provision.cli.spec_cmds", "render",
               "Render the Ansible inventory (hosts.yml, group_vars, host_vars)."),
    "schema": ("provision.cli.spec_cmds", "schema", "Print the site spec's JSON Schema."),
    "migrate": ("provision.cli.spec_cmds", "migrate",
                "Rewrite a spec in the current spec_version (the original is left alone)."),
    "demo": ("provision.cli.demo", "demo",
             "Run forge's main job on the embedded reference-architecture site."),
    "lab": ("provision.cli.lab", "lab",
            "A local cluster of Debian systemd containers, reachable over SSH on 127.0.0.1."),
    "deploy": ("provision.cli.deploy", "deploy",
               "Deploy the site's stack with Ansible; every run keeps runs/deploy-<time>/."),
    "check": ("provision.cli.check", "check",
              "Run acceptance checks on the nodes of SPEC and write a run directory."),
    "requalify": ("provision.cli.requalify", "requalify",
                  "Re-qualify NODE after a hardware drain; resume it only if every check "
                  "passes."),
    "baseline": ("provision.cli.baseline", "baseline",
                 "Calibrate the floors on a golden node: fingerprint + measured figures."),
    "ingest": ("provision.cli.ingest", "ingest",
               "Turn tool output produced elsewhere into measurement records (JSON Lines)."),
    "analyze": ("provision.cli.analyze", "analyze",
                "Judge measurements against hard limits, like parts, pairs and a baseline."),
    "rma": ("provision.cli.rma", "rma",
            "Write the evidence bundle a vendor asks for, for one node or GPU."),
    "sweep": ("provision.cli.sweep", "sweep",
              "Light, non-disruptive health checks of every node, from cron, systemd or Slurm."),
    "history": ("provision.cli.history", "history",
                "Show how nodes' readings changed over time, one sparkline per node, GPU and "
                "metric."),
    "bmc": ("provision.cli.bmc", "bmc",
            "Day 0 on the BMCs (Redfish): inventory, firmware and BIOS audits, power, boot, "
            "media."),
    "rails": ("provision.cli.rails", "rails",
              "Compute rails by identity (PCI address), not by mlx5_<i> order."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        command: click.Command = getattr(importlib.import_module(target[0]), target[1])
        if _AS_PROGRAM:
            gc.enable()  # start-up is over (see the top of this module)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(len(n) for n in COMMANDS)
        rows = [(name, _shorten(COMMANDS[name][2], limit)) for name in sorted(COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:max(limit - 3, 10)].rstrip() + "..."


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="forge")
@click.option("--debug", is_flag=True,
              help="Print tracebacks as well as the one-line error (same exit code).")
@click.option("--home", metavar="DIR", envvar="FORGE_HOME",
              help="A site's own copy of forge's playbooks, templates and examples "
                   "(default: the ones installed with forge; env FORGE_HOME).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, home: str | None) -> None:
    """forge: site spec -> inventory -> deploy -> acceptance -> sweeps.

    \b
    Example:
      forge validate site-specs/small.yaml
      forge plan site-specs/small.yaml
      forge render site-specs/small.yaml -o site-inventory
    Exit codes: docs/exit-codes.md (0 ok, 1 checks failed, 2 bad input, 3 deploy
    failed, 4 unreachable, 70 internal error, 124 timeout, 130/143 interrupted).
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    if home:
        os.environ["FORGE_HOME"] = home


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so every cleanup (staging directories, locks) runs."""


_deciding = False  # a command is running: SIGTERM or Ctrl-C stops it (after, both are ignored)


def _on_sigterm(_signum: int, _frame: object) -> None:
    if _deciding:
        raise Terminated()


def _on_sigint(_signum: int, _frame: object) -> None:
    if _deciding:
        raise KeyboardInterrupt


def _say(line: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # stderr is gone: the exit code still tells
        click.echo(line, err=True)


def _os_error_line(exc: OSError) -> str:
    what = exc.strerror or str(exc) or type(exc).__name__
    paths = [p for p in (exc.filename, exc.filename2) if p is not None]
    return f"{': '.join(str(p) for p in paths)}: {what}" if paths else what


#: a group run without a command (click >= 8.2 raises it to print the group's help)
_NO_ARGS_IS_HELP: type[click.ClickException] | tuple[()] = getattr(
    click.exceptions, "NoArgsIsHelpError", ())


def _report(exc: BaseException) -> ExitCode:
    """One line (plus hint) on stderr for ``exc``; returns the exit code."""
    sqlite3 = sys.modules.get("sqlite3")
    if isinstance(exc, ForgeError):
        _say(f"forge: error: {exc.message}")
        if exc.hint:
            _say(f"  hint: {exc.hint}")
        return exc.exit_code
    if isinstance(exc, _NO_ARGS_IS_HELP):  # `forge`, `forge bmc`: the help, as asked
        exc.show()
        return ExitCode.BAD_INPUT
    if isinstance(exc, click.ClickException):  # a flag, an argument or a choice: one line
        _say(f"forge: error: {exc.format_message()}")
        if isinstance(exc, click.UsageError):
            command = exc.ctx.command_path if exc.ctx is not None else "forge"
            _say(f"  hint: {command} --help")
        return ExitCode.BAD_INPUT
    if isinstance(exc, Terminated) or isinstance(exc.__cause__, Terminated):  # click: Abort
        _say("forge: terminated")
        return ExitCode.TERMINATED
    if isinstance(exc, (KeyboardInterrupt, click.exceptions.Abort)):
        _say("forge: interrupted")
        return ExitCode.INTERRUPTED
    if isinstance(exc, OSError):
        _say(f"forge: error: {_os_error_line(exc)}")
        return ExitCode.BAD_INPUT
    if isinstance(exc, UnicodeDecodeError):
        _say(f"forge: error: input is not UTF-8 text ({exc.reason} at byte {exc.start})")
        return ExitCode.BAD_INPUT
    if (number := unreadable_number(exc)) is not None:
        _say(f"forge: error: {number}")
        return ExitCode.BAD_INPUT
    if isinstance(exc, (RecursionError, MemoryError)):
        _say("forge: error: input too deeply nested or too large to read "
             f"({type(exc).__name__})")
        return ExitCode.BAD_INPUT
    csv = sys.modules.get("csv")
    if csv is not None and isinstance(exc, csv.Error):
        _say(f"forge: error: input is not CSV forge can read ({exc})")
        return ExitCode.BAD_INPUT
    if sqlite3 is not None and isinstance(exc, sqlite3.DatabaseError):
        _say(f"forge: error: database: {exc}")
        return ExitCode.BAD_INPUT
    _say(f"forge: internal error: {type(exc).__name__}: {exc}")
    _say(f"  hint: {BUG_REPORT}")
    return ExitCode.INTERNAL_ERROR


def _exit(code: int) -> NoReturn:
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        # the reader went away (`forge plan | head -1`): nothing more to say to it
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), sys.stdout.fileno())
    if _AS_PROGRAM:
        # The program is leaving: the collection Python runs at shutdown would walk every
        # object still alive only to find no garbage (0.02 s after a 50 MB ingest). Frozen,
        # they are skipped; exit handlers still run and open files are still closed.
        gc.disable()
        gc.freeze()
    sys.exit(code)


def _outcome(args: list[str], debug: bool) -> int:
    """Run the command; its exit code (every error reported in one line)."""
    global _deciding
    _deciding = True
    try:
        rv = cli.main(args=args, prog_name="forge", standalone_mode=False)
        sys.stdout.flush()
        # a command may return an exit code (an int or ExitCode); anything else is success
        return int(rv) if isinstance(rv, int) and not isinstance(rv, bool) else 0
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except BrokenPipeError:
        return int(ExitCode.OK)
    except SystemExit:
        if type(sys.stdout).__name__ == "PacifyFlushWrapper":
            return int(ExitCode.OK)  # click's own EPIPE exit: the reader went away
        raise
    except (Exception, KeyboardInterrupt) as exc:  # the one boundary: nothing escapes as is
        if debug:
            import traceback

            traceback.print_exc()
        return int(_report(exc))
    finally:
        # The outcome is decided (and its files written): a SIGTERM or Ctrl-C from here on, even
        # during Python's shutdown, which frees a large spec, is ignored, so the process
        # leaves with that outcome and not killed by the signal's default action.
        _deciding = False
        if _AS_PROGRAM:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the CLI; map every outcome to an exit code (the only place that prints an error).

    Commands signal failure by raising a ForgeError, by returning an exit code or
    by ``ctx.exit(code)``.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if sys.stdout is None:  # started with stdout closed (`forge validate ... >&-`)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    previous_int = signal.signal(signal.SIGINT, _on_sigint)
    try:
        code = _outcome(args, debug)
    finally:
        if not _AS_PROGRAM:  # called from other code: leave its handlers as they were
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, previous_int)
    _exit(code)

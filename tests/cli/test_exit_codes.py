"""docs/exit-codes.md against the one table (ExitCode) and the one rule (combine), and every
command's --help against the project's promise (an example in each)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from provision.cli.main import COMMANDS, cli
from provision.errors import PRECEDENCE, ExitCode, combine

DOC = (Path(__file__).resolve().parents[2] / "docs" / "exit-codes.md").read_text()


def test_table_lists_every_code_and_nothing_else() -> None:
    rows = dict(re.findall(r"^\|\s*(\d+)\s*\|\s*([a-z ]+?)\s*\|", DOC, re.M))
    assert {int(k): v for k, v in rows.items()} == {
        int(c): c.name.lower().replace("_", " ") for c in ExitCode
    } | {int(ExitCode.OK): "ok", int(ExitCode.HOSTS_UNREACHABLE): "hosts unreachable",
         int(ExitCode.INTERNAL_ERROR): "internal error"}


def test_documented_precedence_is_the_code_s() -> None:
    line = re.search(r"the first of these present wins:\s*\n?\s*([\d, ]+)\.", DOC)
    assert line, "docs/exit-codes.md must state the precedence"
    assert [int(x) for x in line.group(1).split(",")] == [int(c) for c in PRECEDENCE]
    assert set(PRECEDENCE) == set(ExitCode)


@pytest.mark.parametrize(("codes", "want"), [
    ([], ExitCode.OK),
    ([ExitCode.CHECKS_FAILED, ExitCode.HOSTS_UNREACHABLE], ExitCode.HOSTS_UNREACHABLE),
    ([ExitCode.DEPLOY_FAILED, ExitCode.HOSTS_UNREACHABLE], ExitCode.HOSTS_UNREACHABLE),
    ([ExitCode.TIMEOUT, ExitCode.CHECKS_FAILED], ExitCode.TIMEOUT),
    ([ExitCode.BAD_INPUT, ExitCode.HOSTS_UNREACHABLE, 1], ExitCode.BAD_INPUT),
    ([0, 0, 1], ExitCode.CHECKS_FAILED),
])
def test_combine(codes: list[int], want: ExitCode) -> None:
    assert combine(codes) == want


def test_every_command_result_uses_the_rule() -> None:
    """failed + unreachable is 4 for deploy, sweep and bmc alike."""
    from provision.bmc.report import exit_code as bmc_exit
    from provision.deploy.driver import DeployResult
    from provision.deploy.events import HostResult
    from provision.sweep.result import NodeResult, SweepResult

    hosts = (HostResult("a", "failed", 0, 0, 0, None), HostResult("b", "unreachable", 0, 0, 0, None))
    assert DeployResult(Path("."), ("a", "b"), hosts, 2, "failed", 1.0).exit_code == 4
    nodes = (NodeResult("a", "failing"), NodeResult("b", "unreachable"))
    assert SweepResult("r", "quick", 0, 1, nodes).exit_code() == 4
    assert bmc_exit([], True) == ExitCode.CHECKS_FAILED


def _all_commands() -> list[tuple[str, click.Command]]:
    out: list[tuple[str, click.Command]] = []
    ctx = click.Context(cli)
    for name in COMMANDS:
        cmd = cli.get_command(ctx, name)
        assert cmd is not None
        out.append((name, cmd))
        if isinstance(cmd, click.Group):
            out += [(f"{name} {sub}", cmd.commands[sub]) for sub in cmd.commands]
    return out


@pytest.mark.parametrize(("name", "command"), _all_commands(), ids=lambda x: str(x))
def test_every_help_has_an_example(name: str, command: click.Command) -> None:
    assert "Example" in (command.help or ""), f"forge {name} --help shows no example"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_static_summaries_match_the_commands(name: str) -> None:
    """`forge --help` lists commands without importing them: its summaries must not drift."""
    command = cli.get_command(click.Context(cli), name)
    assert command is not None and command.help
    first = command.help.strip().split("\n\n")[0].replace("\n", " ")
    assert first == COMMANDS[name][2]

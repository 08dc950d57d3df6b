"""The one error boundary: no traceback without --debug, the same exit code with it, a bug
is 'internal error' (70), and closed pipes and streams are not failures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

from provision.cli.main import cli, main

ROOT = Path(__file__).resolve().parents[2]
LARGE = ROOT / "site-specs" / "large.yaml"
FORGE = [sys.executable, "-m", "provision"]


def _run(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FORGE, *args], capture_output=True, text=True, timeout=60,
                          **kw)  # type: ignore[call-overload]


def test_debug_keeps_the_exit_code_and_shows_the_traceback(tmp_path: Path) -> None:
    plain = _run("validate", str(tmp_path / "nope.yaml"))
    debug = _run("--debug", "validate", str(tmp_path / "nope.yaml"))
    assert plain.returncode == debug.returncode == 2
    assert "Traceback" not in plain.stderr and "Traceback" in debug.stderr
    assert plain.stderr.startswith("forge: error: ") and "nope.yaml" in plain.stderr


@pytest.mark.parametrize(("args", "names"), [
    (["check", "--table", "xml"], "'--table': 'xml' is not one of 'jsonl', 'parquet', 'arrow'"),
    (["ingest", "nvidia-smi", "x.txt"], "'TOOL': 'nvidia-smi' is not one of"),
    (["analyze", "--no-such-flag"], "No such option '--no-such-flag'"),
    (["rma"], "Missing argument 'NODE[:GPU]'"),
])
def test_a_bad_flag_or_argument_is_one_line_naming_it(args: list[str], names: str) -> None:
    res = _run(*args)
    assert res.returncode == 2
    first, hint = res.stderr.splitlines()
    assert first.startswith("forge: error: ") and names in first, res.stderr
    assert hint == f"  hint: forge {args[0]} --help"


@pytest.mark.parametrize("group", [[], ["bmc"]])
def test_a_group_without_a_command_prints_its_help(group: list[str]) -> None:
    res = _run(*group)
    assert res.returncode == 2
    assert res.stderr.startswith(f"Usage: forge {' '.join(group)}".rstrip() + " [OPTIONS] COMMAND")
    assert "error" not in res.stderr.splitlines()[0] and "Commands:" in res.stderr


def test_a_number_of_thousands_of_digits_is_bad_input(tmp_path: Path) -> None:
    log = tmp_path / "nccl.log"
    log.write_text("# nThread 1 nGpus 1 minBytes 8 maxBytes 8 step: 2(factor) warmup iters: 5\n"
                   "#       size         count      type   redop    root     time   algbw   busbw"
                   " #wrong     time   algbw   busbw #wrong\n"
                   f"  {'9' * 5000}  2  float  sum  -1  1.0  0.0  0.0  0  1.0  0.0  0.0  0\n"
                   "# Avg bus bandwidth    : 0\n")
    res = _run("ingest", "nccl-tests", "--node", "gpu001", str(log))
    assert res.returncode == 2, res.stderr
    # the file is named, whichever of the files given holds the number
    assert res.stderr.startswith(f"forge: error: {log}: a number in the input has more digits")
    assert "internal error" not in res.stderr and len(res.stderr.splitlines()) == 1
    res = _run("ingest", "nccl-tests", "--node", "gpu001", "-", input=log.read_text())
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("forge: error: <stdin>: a number in the input has more")


@pytest.mark.parametrize("raised, says", [
    (ValueError("Exceeds the limit (4300 digits) for integer string conversion: value has "
                "5000 digits; use sys.set_int_max_str_digits() to increase the limit"),
     "forge: error: a number in the input has more digits than any tool prints (Exceeds "
     "the limit (4300 digits) for integer string conversion: value has 5000 digits)"),
    (OverflowError("int too large to convert to float"),
     "forge: error: a number in the input is out of range (int too large to convert to float)"),
])
def test_a_number_python_refuses_anywhere_is_bad_input(
        raised: Exception, says: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The boundary's net for a command that does not name its file: exit 2, one line."""
    assert _exit_of(raised) == 2
    assert capsys.readouterr().err.splitlines() == [says]


def _exit_of(raised: Exception) -> int | str | None:
    """The exit code of `forge` running a command that raises ``raised``."""
    @click.command("raising")
    def raising() -> None:
        """Example: forge raising"""
        raise raised

    cli.add_command(raising)
    try:
        with pytest.raises(SystemExit) as exc:
            main(["raising"])
    finally:
        cli.commands.pop("raising")
    return exc.value.code


def test_a_bug_is_an_internal_error_with_its_own_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit_of(ZeroDivisionError("division by zero")) == 70
    err = capsys.readouterr().err
    assert err.splitlines()[0] == "forge: internal error: ZeroDivisionError: division by zero"
    assert "report" in err and "Traceback" not in err


INTERRUPT_IN_EXEC = """
import os, runpy, sys
import provision
sys.argv = [os.path.join(os.path.dirname(provision.__file__), "__main__.py"), "interrupt-in-exec"]
import click
from provision.cli.main import cli

@click.command("interrupt-in-exec")
def interrupt_in_exec() -> None:
    \"\"\"Example: forge interrupt-in-exec\"\"\"
    exec("raise KeyboardInterrupt")  # as if Ctrl-C came while a dataclass was being made

cli.add_command(interrupt_in_exec)
runpy.run_module("provision", run_name="__main__")
"""


def test_python_m_provision_exits_130_after_ctrl_c_like_forge(tmp_path: Path) -> None:
    """CPython's -m runner would end the process by SIGINT (-2) once a KeyboardInterrupt
    crossed an exec() of a string, though forge caught it and chose 130."""
    (tmp_path / "interrupt_in_exec.py").write_text(INTERRUPT_IN_EXEC)
    done = subprocess.run([sys.executable, "-m", "interrupt_in_exec"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stderr.strip()) == (130, "forge: interrupted")


def test_os_error_names_the_path(tmp_path: Path) -> None:
    run = _run("render", str(ROOT / "site-specs" / "small.yaml"), "-o",
               "/proc/forge-no-such/inv")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "/proc/forge-no-such" in run.stderr


def test_reader_going_away_is_not_a_failure() -> None:
    proc = subprocess.Popen([*FORGE, "plan", str(LARGE)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline()
    proc.stdout.close()  # what `| head -1` does
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_closed_stdout_is_not_a_traceback() -> None:
    run = subprocess.run(["bash", "-c", f"{' '.join(FORGE)} validate {LARGE} >&-"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "Traceback" not in run.stderr


def test_version() -> None:
    run = _run("--version")
    assert run.returncode == 0 and run.stdout.startswith("forge, version ")


def test_check_list_needs_no_spec_and_check_without_one_is_usage(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["check", "--list"])
    assert exc.value.code == 0 and "conformance" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["check"])
    assert exc.value.code == 2 and "SPEC" in capsys.readouterr().err


def test_deploy_nodes_and_limit_are_one_option() -> None:
    command = cli.get_command(click.Context(cli), "deploy")
    assert command is not None
    option = next(p for p in command.params if p.name == "limit")
    assert {"--nodes", "--limit"} <= set(option.opts)

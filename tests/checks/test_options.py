"""Each check's typed options: declared with type, default, unit and help; validated at the
command line (one line naming the check and option, exit 2); every option read by its check."""

from __future__ import annotations

import dataclasses
import functools
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from provision.checks import options as opt
from provision.checks import registry
from provision.checks.base import Check, Context
from provision.checks.gpuwork import HbmOptions
from provision.checks.service import LAUNCHERS, resolve_options
from provision.cli.check import VIAS
from provision.cli.main import cli
from provision.errors import InputError
from provision.expectations import plan_site
from provision.spec import load_site

EXAMPLES = Path(__file__).resolve().parents[2] / "site-specs"
#: a value of each type that no default equals: a read of it is visible in the argv
SENTINELS: dict[str, Any] = {"int": 4, "float": 4711.0, "str": None, "bool": True}


class _Reads:
    """An options object that records which fields are read."""

    def __init__(self, real: Any) -> None:
        object.__setattr__(self, "_real", real)
        object.__setattr__(self, "read", set())

    def __getattr__(self, name: str) -> Any:
        self.read.add(name)
        return getattr(self._real, name)


def _sentinel(check: Check) -> Any:
    values = {}
    for info in opt.fields(check.Options):
        if info.type == "str":
            values[info.name] = info.choices[-1] if info.choices else "3:7"
        elif info.choices:
            values[info.name] = info.choices[-1]
        else:
            values[info.name] = SENTINELS[info.type]
    return check.Options(**values)


@functools.cache
def _site() -> tuple[Any, Any]:
    site = load_site(EXAMPLES / "small.yaml")
    return site, plan_site(site)


def _exercise(check: Check, options: Any) -> list[str]:
    """Everything a check builds from its context: argv, stdin, invocations, timeout."""
    site, plan = _site()
    nodes = tuple(n.name for n in site.nodes if n.name.startswith("gpu"))
    node = None if check.scope == "cluster" else "gpu001"
    ctx = Context(site, nodes, node, plan.for_node(node) if node else None, sys.executable,
                  "slurm", options)
    words: list[str] = [f"timeout={check.timeout(ctx)}"]
    if check.scope == "node":
        words += check.argv(ctx)
        words.append(check.stdin(ctx) or "")
    else:
        words += [a for i in check.invocations(ctx) for a in i.argv]
    return words


@pytest.mark.parametrize("check", registry.CATALOG, ids=lambda c: c.name)
def test_every_option_is_declared_and_read_by_its_check(check: Check) -> None:
    assert dataclasses.is_dataclass(check.Options)
    assert check.Options.__dataclass_params__.frozen  # type: ignore[attr-defined]
    infos = opt.fields(check.Options)
    for info in infos:
        assert info.help, f"{check.name}.{info.name} has no description"
        assert info.type in SENTINELS, f"{check.name}.{info.name}: type {info.type}"
    reads = _Reads(_sentinel(check))
    _exercise(check, reads)
    unread = {i.name for i in infos} - reads.read
    assert not unread, f"{check.name}: option(s) {unread} are declared but never read"
    # and reading them changes what the check does (not only a read that is thrown away)
    for info in infos:
        one = dataclasses.replace(check.Options(), **{info.name: getattr(reads._real,
                                                                            info.name)})
        assert _exercise(check, one) != _exercise(check, check.Options()), \
            f"{check.name}.{info.name} has no effect"


def test_the_sentinel_test_catches_an_option_nothing_reads() -> None:
    @dataclasses.dataclass(frozen=True)
    class WithGhost(HbmOptions):
        ghost: int = opt.option(1, help="read by nobody")

    reads = _Reads(WithGhost(size_mib=4))
    _exercise(registry.get("hbm"), reads)
    assert "size_mib" in reads.read and "ghost" not in reads.read


def test_values_are_typed_and_bad_ones_name_check_and_option() -> None:
    hbm, sdc, dcgm = (registry.get(n) for n in ("hbm", "sdc", "dcgm"))
    got = resolve_options([hbm, sdc, dcgm], {"hbm": {"size-mib": "8192"},
                                             "sdc": {"burnin_seconds": "90"},
                                             "dcgm": {"level": "4"}})
    assert got["hbm"].size_mib == 8192 and got["sdc"].burnin_seconds == 90.0
    assert got["dcgm"].level == 4 and got["sdc"].inject_flip is None
    for given, words in (({"hbm": {"size_mib": "big"}}, "check hbm: option size_mib"),
                         ({"hbm": {"sizes": "1"}}, "check hbm: unknown option 'sizes'"),
                         ({"dcgm": {"level": "7"}}, "check dcgm: option level: 7 is not one"),
                         ({"sdc": {"inject_flip": "gpu3"}}, "check sdc: option inject_flip"),
                         ({"sdc": {"burnin_seconds": "-5"}}, "must not be negative"),
                         ({"nccl": {"collectives": "all_reduce,bogus"}}, "bogus is not one"),
                         ({"nope": {"x": "1"}}, "unknown check 'nope'")):
        with pytest.raises(InputError, match=words):
            resolve_options(registry.CATALOG, given)


def test_cli_rejects_a_bad_option_in_one_line_with_exit_2(tmp_path: Path) -> None:
    import subprocess

    def forge(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "provision", *args], capture_output=True,
                              text=True, timeout=120, cwd=tmp_path)

    res = forge("check", str(EXAMPLES / "small.yaml"), "--checks", "hbm", "-O",
                "hbm.size_mib=lots", "--via", "local")
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert "check hbm: option size_mib: expected int (MiB), got 'lots'" in lines[0]
    assert "Traceback" not in res.stderr and not (tmp_path / "runs").exists()
    res = forge("check", "--list", "-O", "hbm=4")
    assert res.returncode == 2 and "expected CHECK.NAME=VALUE" in res.stderr


def test_list_shows_every_option_with_unit_and_default() -> None:
    res = CliRunner().invoke(cli, ["check", "--list"])
    assert res.exit_code == 0
    assert "-O hbm.size_mib=<int MiB> (default 4096 MiB)" in res.output
    assert "-O sdc.burnin_seconds=<float s>" in res.output
    assert "-O dcgm.level=<int, one of 1,2,3,4>" in res.output
    for check in registry.CATALOG:
        for info in opt.fields(check.Options):
            assert f"-O {check.name}.{info.name}=" in res.output


def test_cli_via_choices_are_the_service_launchers() -> None:
    assert set(VIAS) == set(LAUNCHERS)


def test_a_level_4_dcgm_run_gets_two_hours_unless_the_run_says_otherwise() -> None:
    from provision.checks.dcgm import Dcgm, DcgmOptions

    site = load_site(EXAMPLES / "small.yaml")
    plan = plan_site(site).for_node("gpu001")

    def limit(level: int | None, run_limit: float | None = None) -> float:
        return Dcgm().timeout(Context(site, ("gpu001",), "gpu001", plan,
                                      options=DcgmOptions(level=level), timeout_s=run_limit))

    assert (limit(None), limit(3), limit(4)) == (3600.0, 3600.0, 7200.0)
    assert limit(4, run_limit=900) == 900.0                      # --timeout wins

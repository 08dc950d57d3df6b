"""The ownership guard refuses disruptive checks on nodes in service (pure parts)."""

from __future__ import annotations

import pytest

from provision.actions.policy import NodeState
from provision.actions.slurm import parse_sinfo
from provision.checks import ownership, registry
from provision.errors import InputError

SINFO = ("gpu001|idle|none\ngpu002|drained|acceptance\ngpu003|allocated|none\n"
         "gpu004|reserved|none\n")


def test_disruptive_checks_are_the_ones_that_take_gpus_or_fabric() -> None:
    names = set(ownership.disruptive(list(registry.CATALOG)))
    assert names == {"dcgm", "gpudirect", "rdma-pairs", "hbm", "sdc", "nccl", "nccl-multinode",
                     "nvlink"}


def test_idle_and_allocated_nodes_are_refused() -> None:
    states = parse_sinfo(SINFO)
    bad = ownership.refusals(["gpu001", "gpu002", "gpu003", "gpu004", "gpu009"], states)
    assert bad == ["gpu001: idle (not drained or reserved for acceptance)",
                   "gpu003: allocated (not drained or reserved for acceptance)",
                   "gpu009: unknown to the scheduler"]


def test_reservation_members_pass() -> None:
    states = parse_sinfo(SINFO)
    held = ownership.parse_reservation(
        "ReservationName=acc StartTime=2026-01-01T00:00:00 Nodes=gpu[001,003] NodeCnt=2 "
        "Flags=MAINT,IGNORE_JOBS")
    assert held == ["gpu001", "gpu003"]
    assert ownership.refusals(["gpu001", "gpu003"], states, held) == []


def test_guard_raises_only_for_disruptive_checks() -> None:
    states = {"n1": NodeState("n1", "idle", False)}
    ownership.guard([registry.get("conformance")], ["n1"], states)  # not disruptive
    with pytest.raises(InputError, match="sdc would disturb nodes in service: n1: idle"):
        ownership.guard([registry.get("sdc")], ["n1"], states)


def test_cli_refuses_without_an_answer_from_the_scheduler_and_force_overrides(
        forge, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil
    from pathlib import Path

    if shutil.which("sinfo"):
        pytest.skip("a Slurm client is installed here: the scheduler would answer")
    spec = str(Path(__file__).resolve().parents[2] / "site-specs/small.yaml")
    run = tmp_path / "run"
    code, _, err = forge("check", spec, "--via", "local", "--checks", "hbm", "--nodes",
                         "gpu001", "-o", str(run))
    assert code == 2 and "hbm: cannot ask the scheduler" in err and not run.exists()
    code, _, err = forge("check", spec, "--via", "local", "--checks", "hbm", "--nodes",
                         "gpu001", "-o", str(run), "--force", "--timeout", "60")
    assert code != 2 and (run / "verdict.json").exists()

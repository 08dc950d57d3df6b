"""The NCCL transport proof on real NCCL INFO logs (tests/checks/fixtures/nccl-info)."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.checks import registry
from provision.checks.base import Raw
from provision.checks.nccl_transport import nccl_env, transport
from provision.expectations import plan_site
from provision.spec import load_site

LOGS = Path(__file__).resolve().parent / "fixtures" / "nccl-info"
EXAMPLES = Path(__file__).resolve().parents[2] / "site-specs"
REAL = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "real"


def log(name: str) -> str:
    return (LOGS / name).read_text()


@pytest.mark.parametrize("name", ["nccl707-a100-net-ib-gdrdma.txt",
                                  "deepep106-ibext-gdrdma.txt"])
def test_ib_with_gpudirect_on_every_channel_passes(name: str) -> None:
    t = transport(log(name))
    assert t.ok and t.channels == t.gdr == sum(1 for ln in log(name).splitlines() if ln)


def test_socket_fallback_fails() -> None:
    t = transport(log("nccltests166-net-socket-fallback.txt"))
    assert not t.ok and t.socket == t.channels == 14 and "NET/Socket" in t.why()


def test_ib_without_gpudirect_fails_as_host_staged() -> None:
    t = transport(log("ncclmesh56-net-ib-without-gdr.txt"))
    assert not t.ok and t.host_staged == 16 and "host-staged" in t.why()


def test_init_only_log_with_gdr_disabled_proves_nothing() -> None:
    t = transport(log("nccl1537-roce-gdr-disabled-init.txt"))
    assert not t.ok and t.channels == 0
    assert t.gdr_disabled_hcas == ("mlx5_0", "mlx5_1") and "mlx5_0,mlx5_1" in t.why()


def test_one_socket_channel_among_gdr_ones_fails() -> None:
    mixed = log("nccl707-a100-net-ib-gdrdma.txt") + \
        log("nccltests166-net-socket-fallback.txt").splitlines()[1] + "\n"
    t = transport(mixed)
    assert not t.ok and t.socket == 1 and t.gdr == 12


def test_env_names_the_plans_hcas_exactly() -> None:
    env = nccl_env([("mlx5_0", 1), ("mlx5_3", 1)], roce=False)
    assert env["NCCL_IB_HCA"] == "=mlx5_0:1,mlx5_3:1"
    assert env["NCCL_DEBUG"] == "INFO" and "NCCL_IB_TC" not in env
    roce = nccl_env([("mlx5_0", 1)], roce=True)
    assert roce["NCCL_IB_TC"] == "106" and roce["NCCL_IB_GID_INDEX"] == "3"


def test_multinode_nccl_is_judged_on_its_transport() -> None:
    site = load_site(EXAMPLES / "small.yaml")
    plan = plan_site(site)
    check = registry.get("nccl-multinode")
    table = REAL / "nccl-tests" / "gcm-a100-sxm4-80gb-2node-16gpu-nccl2.12.12-hostname-placeholder.txt"
    if not table.exists():
        pytest.skip("real fixtures not present")
    # a real 2-node result table, with the INFO lines of a socket fallback (stderr)
    for info, want in (("nccltests166-net-socket-fallback.txt", 0),
                       ("nccl707-a100-net-ib-gdrdma.txt", 1)):
        raw = Raw("gpu001+gpu002", table.read_text(), log(info), 0, ("gpu001", "gpu002"))
        recs = check.cluster_measurements(check.parse(raw), plan)
        rec = next(r for r in recs if r.metric == "nccl_transport_ok")
        assert rec.value == want and rec.min == 1 and rec.peer == "gpu002"
        assert any(r.metric == "nccl_busbw" for r in recs)


def test_multinode_step_gets_cpus_gpu_binding_and_the_rail_hcas() -> None:
    import sys

    from provision.checks.base import Context
    from provision.checks.nccl import NcclOptions

    site = load_site(EXAMPLES / "small.yaml")
    plan = plan_site(site)
    nodes = tuple(n.name for n in site.nodes if n.name.startswith("gpu"))
    ctx = Context(site, nodes, None, None, sys.executable, "slurm", NcclOptions())
    argv = registry.get("nccl-multinode").invocations(ctx)[0].argv
    assert "--cpus-per-task=16" in argv          # 128 cores / 8 ranks
    assert "--gpus-per-task=1" in argv and "--gpu-bind=closest" in argv
    hca = next(a for a in argv if a.startswith("NCCL_IB_HCA="))
    want = ",".join(f"{d}:{p}" for d, p in plan.for_node("gpu001").hca_ports())
    assert hca == f"NCCL_IB_HCA=={want}" and want.count(":") == 8
    assert "NCCL_TESTS_DEVICE=0" in argv

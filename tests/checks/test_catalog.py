"""Checks' measurements from real tool output (shared fixtures) against real profiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.checks import registry
from provision.checks.base import Raw
from provision.checks.collected import Collected, parse_collected
from provision.checks.reference import MissingReference, judged
from provision.checks.slurm_health import SlurmHealth, parse_scontrol_nodes
from provision.errors import InputError
from provision.expectations import NodePlan, plan_site
from provision.judge import failed
from provision.spec import load_site

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "site-specs"
REAL_FIXTURES = ROOT.parent / "shared" / "fixtures" / "real"


def _plan(node: str = "gpu001") -> NodePlan:
    return plan_site(load_site(EXAMPLES / "small.yaml")).for_node(node)


def _fixture(*parts: str) -> str:
    return Path(REAL_FIXTURES, *parts).read_text()


# facts a collector would read from /proc and /sys of a healthy SR675 V3 (synthesized: no
# such node here); the GPU and topology text below is real nvidia-smi output
HOST_FACTS = {"cpu": {"logical": 256, "online": 256, "models": ["AMD EPYC 9554"], "sockets": 2},
              "memory": {"mem_total_kib": 1584000000}, "rdma": [], "pci_gpus": [],
              "modules": {}}


def _collected(commands: dict[str, str], facts: dict | None = None) -> Collected:
    return Collected("gpu001", "gpu001", facts or HOST_FACTS, {},
                     {k: {"argv": [], "stdout": v, "stderr": "", "returncode": 0,
                          "missing": None} for k, v in commands.items()},
                     {"expect": {"driver_branch": "570"}})


def by(records, metric):  # type: ignore[no-untyped-def]
    return [r for r in records if r.metric == metric]


def test_conformance_on_real_query_gpu_output() -> None:
    q = _fixture("nvidia-smi-query-gpu", "exporter-h100-590.48.01-all-fields-load.txt")
    recs = registry.get("conformance").measurements(_collected({"query-gpu": q}), _plan())
    count = by(recs, "gpu_count")[0]
    assert count.value == 1 and count.min == 8 and failed(count)        # 1 of 8 GPUs
    mem = by(recs, "gpu_memory_total")[0]
    assert mem.value == 81559 and mem.min == pytest.approx(86956.02, abs=0.01)
    assert failed(mem) and "gpu.memory_mib" in (mem.source or "")       # 80 GB part, 94 GB spec
    model = by(recs, "gpu_model_ok")[0]
    assert model.value == 0 and "NVIDIA H100 80GB HBM3" in (model.detail or "")
    assert "96.00.A5.00.01" in (model.detail or "")                     # VBIOS reported
    assert by(recs, "gpu_driver_ok")[0].value == 0                      # 590 is not branch 570
    gen = by(recs, "pcie_link_gen")[0]
    assert gen.value == 5 and not failed(gen)
    assert by(recs, "gpu_persistence_mode")[0].value == 1
    cpu = by(recs, "cpu_count")[0]
    assert cpu.value == 256 and cpu.min == 128 and not failed(cpu)
    mem_host = by(recs, "host_memory")[0]
    assert mem_host.value == pytest.approx(1510.62, abs=0.01) and not failed(mem_host)
    nic = by(recs, "nic_count")[0]
    assert nic.value == 0 and nic.min == 5 and failed(nic)
    ports = by(recs, "nic_port_up")
    assert len(ports) == 8 and all("device missing" in (p.detail or "") for p in ports)


def test_conformance_locality_from_real_topo() -> None:
    topo = _fixture("nvidia-smi-topo", "nccl1617-4x-h100-nv6-4nics-numa-spread.txt")
    q = _fixture("nvidia-smi-query-gpu", "exporter-h100-590.48.01-all-fields-load.txt")
    recs = registry.get("conformance").measurements(
        _collected({"query-gpu": q, "topo": topo}), _plan())
    dist = by(recs, "gpu_nic_distance")
    # the profile puts GPUs 0,1 on mlx5_0; in this real 4-GPU box NIC0 is PIX to GPU0 only
    g0 = next(d for d in dist if d.gpu == 0 and d.peer == "mlx5_0")
    g1 = next(d for d in dist if d.gpu == 1 and d.peer == "mlx5_0")
    assert (g0.value, g1.value) == (2, 6)
    assert not failed(g0) and failed(g1) and "SYS" in (g1.detail or "")


def test_nvlink_names_missing_and_unexpected_bridges() -> None:
    topo = _fixture("nvidia-smi-topo", "nccl1617-4x-h100-nv6-4nics-numa-spread.txt")
    nvl = _fixture("nvidia-smi-nvlink", "exporter-h100-18links-590.48.01-tab-indent.txt")
    recs = registry.get("nvlink").measurements(_collected({"topo": topo, "nvlink": nvl}),
                                                _plan())
    bridges = {(r.gpu, r.peer): r for r in by(recs, "nvlink_bridge_ok")}
    b01 = bridges[(0, "gpu001:1")]
    assert b01.value == 0 and "NV6 (want NV12 or more" in (b01.detail or "")
    assert bridges[(0, "gpu001:2")].detail == "GPU0-GPU2: unexpected NV6 (want NV12 or more, provisional)"
    assert bridges[(4, "gpu001:5")].detail == "GPU4-GPU5: missing (want NV12 or more, provisional)"
    speeds = by(recs, "nvlink_link_speed")
    assert speeds and all(s.value == 26.562 and s.min == 26.562 for s in speeds)
    up = by(recs, "nvlink_links_up")[0]
    assert up.value == 18 and up.min == 12 and not failed(up)


def test_missing_reference_is_an_error_not_a_pass() -> None:
    lab = plan_site(load_site(EXAMPLES / "lab.yaml")).for_node("lab-n1")
    with pytest.raises(MissingReference, match="no reference 'hbm_bandwidth'"):
        judged(lab, "hbm_bandwidth", 3000.0, check="hbm")


SCONTROL = (
    "NodeName=lab-n1 Arch=x86_64 CoresPerSocket=1 CPUAlloc=0 State=IDLE ThreadsPerCore=1 "
    "Partitions=debug\n"
    "NodeName=lab-n2 Arch=x86_64 CPUAlloc=0 State=IDLE+DRAIN ThreadsPerCore=1 "
    "Reason=bad dimm [root@2025-01-01T00:00:00]\n"
    "NodeName=lab-n3 Arch=x86_64 State=DOWN* Reason=Not responding [slurm@2025-01-01T00:01:00]\n")


def test_slurm_health_judges_every_spec_node() -> None:
    nodes = parse_scontrol_nodes(SCONTROL)
    assert nodes["lab-n2"].reason.startswith("bad dimm") and not nodes["lab-n2"].usable
    check = SlurmHealth()
    view = check.parse(Raw("cluster", SCONTROL, "", 0, ("lab-n1", "lab-n2", "lab-n3")))
    plan = plan_site(load_site(EXAMPLES / "lab.yaml"))
    recs = {r.node: r for r in check.cluster_measurements(view, plan)}
    assert recs["lab-n1"].value == 1 and recs["lab-n2"].value == 0 and recs["lab-n3"].value == 0
    assert "Reason=bad dimm" in (recs["lab-n2"].detail or "")
    with pytest.raises(InputError, match="not a node line"):
        parse_scontrol_nodes("garbage here\n")


def test_collector_output_that_is_not_json_is_an_error() -> None:
    with pytest.raises(InputError, match="not JSON"):
        parse_collected(Raw("n1", "Traceback (most recent call last)\n", "", 1))
    with pytest.raises(InputError, match=r"printed nothing .*boom"):
        parse_collected(Raw("n1", "", "boom\n", 1))
    with pytest.raises(InputError, match=r"^n1: collector output: a number in the input has more"):
        parse_collected(Raw("n1", f'{{"schema_version": 1, "x": {"9" * 5000}}}\n', "", 0))


def test_registry_selection() -> None:
    assert [c.name for c in registry.select(["slurm", "tools"])] == ["tools", "slurm"]
    assert {c.name for c in registry.select(tags=["no-gpu"])} == {"tools", "conformance",
                                                                   "slurm"}
    with pytest.raises(InputError, match="unknown check 'nope'"):
        registry.select(["nope"])
    with pytest.raises(InputError, match="unknown tag"):
        registry.select(tags=["nope"])

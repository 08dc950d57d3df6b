"""GPUDirect covers every compute port and GPU-NIC path, singly and all at once."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from provision.checks import registry
from provision.checks.base import Context, Raw
from provision.checks.collected import Collected
from provision.checks.gpudirect import ALL, MARK, port_paths, split_marked
from provision.expectations import plan_site
from provision.spec import load_site

EXAMPLES = Path(__file__).resolve().parents[2] / "site-specs"
REAL = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "real" / "perftest"
CUDA_CLIENT = REAL / "schmaustech-a40-roce-16qp-use-cuda-client.txt"


def _ctx(spec: str, node: str) -> Context:
    site = load_site(EXAMPLES / spec)
    plan = plan_site(site)
    nodes = tuple(p.node for p in plan.nodes if p.gpu_count)
    return Context(site, nodes, node, plan.for_node(node), sys.executable, "ssh")


def test_every_port_and_every_gpu_nic_path_carries_traffic() -> None:
    ctx = _ctx("small.yaml", "gpu001")
    assert ctx.plan is not None
    paths = port_paths(ctx.plan)
    assert len(paths) == 8                                   # 4 adapters x 2 ports
    assert len({(p["device"], p["port"]) for p in paths}) == 8
    assert sorted(p["gpu"] for p in paths) == list(range(8))  # every GPU on its own port
    cmds = registry.get("gpudirect").request(ctx)["commands"]
    assert len(cmds) == 11 and ALL in cmds
    assert next(iter(cmds)) == "counters-before" and list(cmds)[-1] == "counters-after"
    singles = [c for k, c in cmds.items() if "->" in k]
    servers = {c["server"][c["server"].index("-d") + 1] for c in singles}
    clients = {c["argv"][c["argv"].index("-d") + 1] for c in singles}
    assert servers == clients == {p["device"] for p in paths}
    script = cmds[ALL]["argv"][2]
    assert script.count("ib_write_bw") == 16 and "wait" in script
    assert all("--use_cuda=" in " ".join(c["argv"]) for c in singles)


def test_roce_connects_to_the_rail_ip_with_the_lossless_class() -> None:
    site = load_site(EXAMPLES / "roce.yaml")
    plan = plan_site(site)
    node = next(p for p in plan.nodes if p.roce and p.gpu_count and len(p.fabric) > 1)
    ctx = Context(site, (node.node,), node.node, node, sys.executable, "ssh")
    cmds = registry.get("gpudirect").request(ctx)["commands"]
    first = next(c for k, c in cmds.items() if "->" in k)
    argv = first["argv"]
    assert argv[-1] == port_paths(node)[0]["address"]        # the server's rail IP
    assert "--tclass=106" in argv and "-R" in argv and argv[argv.index("-x") + 1] == "3"


def test_rdma_pairs_cover_every_rail_in_a_gpu_step() -> None:
    site = load_site(EXAMPLES / "small.yaml")
    nodes = tuple(n.name for n in site.nodes if n.name.startswith("gpu"))
    ctx = Context(site, nodes, None, None, sys.executable, "slurm")
    invs = registry.get("rdma-pairs").invocations(ctx)
    argv = invs[0].argv
    assert "--gpus-per-node=8" in argv and "--exclusive" in argv and "--label" in argv
    assert argv[-1].count(MARK) == 8 and argv[-1].count("--use_cuda=") == 16


@pytest.mark.skipif(not CUDA_CLIENT.exists(), reason="real fixtures not present")
def test_all_at_once_judges_each_port_and_the_aggregate() -> None:
    ctx = _ctx("small.yaml", "gpu001")
    assert ctx.plan is not None
    text = CUDA_CLIENT.read_text()
    marked = f"{MARK} mlx5_0->mlx5_1\n{text}{MARK} mlx5_1->mlx5_2\n{text}"
    assert set(split_marked(marked)) == {"mlx5_0->mlx5_1", "mlx5_1->mlx5_2"}
    check = registry.get("gpudirect")
    coll = check.parse(Raw("gpu001", _collector_json({ALL: marked}), "", 0))
    recs = check.measurements(coll, ctx.plan)
    per_port = [r for r in recs if r.metric == "gpudirect_bw"]
    agg = next(r for r in recs if r.metric == "gpudirect_bw_aggregate")
    assert len(per_port) == 2 and all("all ports at once" in (r.detail or "") for r in per_port)
    # two ports reported of eight: the per-port aggregate is a quarter of one port's figure
    assert agg.value == pytest.approx(sum(r.value for r in per_port) / 8)
    assert agg.min == pytest.approx(0.92 * 200) and agg.value < agg.min
    # with the collector's sysfs facts, each run's record says where it was bound
    rdma = [{"name": f"mlx5_{k}", "pci": {"numa_node": str(k // 4)}} for k in range(3)]
    coll = check.parse(Raw("gpu001", _collector_json(
        {ALL: marked}, {"rdma": rdma}, {"numactl": "/usr/bin/numactl"}), "", 0))
    details = [r.detail or "" for r in check.measurements(coll, ctx.plan)
               if r.metric == "gpudirect_bw"]
    assert details[0].startswith("mlx5_0->mlx5_1 (all ports at once; pinned: mlx5_0 to NUMA "
                                 "node 0, mlx5_1 to NUMA node 0):")


def _collector_json(outputs: dict[str, str], facts: dict[str, Any] | None = None,
                    tools: dict[str, str | None] | None = None) -> str:
    import json

    return json.dumps({"schema_version": 1, "hostname": "gpu001",
                       "facts": {"modules": {"nvidia_peermem": True}, **(facts or {})},
                       "tools": tools or {},
                       "commands": {k: {"argv": ["sh"], "missing": None, "returncode": 0,
                                        "stdout": v, "stderr": ""} for k, v in
                                    outputs.items()}})


def _counter_records(before: str, after: str) -> list[Any]:
    """The gpudirect check's counter records for these before/after readings of gpu001
    (``{dev}`` in them: its first compute port's device)."""
    ctx = _ctx("small.yaml", "gpu001")
    assert ctx.plan is not None
    dev = port_paths(ctx.plan)[0]["device"]
    check = registry.get("gpudirect")
    coll = check.parse(Raw("gpu001", _collector_json(
        {"counters-before": before.format(dev=dev), "counters-after": after.format(dev=dev)}),
        "", 0))
    return [r for r in check.measurements(coll, ctx.plan)
            if r.metric in ("ib_counter_delta", "ib_counter_saturated")]


def test_ib_error_counters_that_grow_during_the_runs_fail_the_port() -> None:
    recs = _counter_records(
        "{dev} 1 symbol_error 4\n{dev} 1 link_downed 0\nmlx5_9 1 symbol_error 0\n",
        "{dev} 1 symbol_error 9\n{dev} 1 link_downed 0\nmlx5_9 1 symbol_error 7\n")
    dev = recs[0].peer.split("/")[0]
    # the storage port mlx5_9 is not a compute port of the plan: not judged here
    assert [(r.peer, r.value) for r in recs] == [(f"{dev}/1", 0.0), (f"{dev}/1", 5.0)]
    assert recs[1].max == 0.0 and "symbol_error: 4 -> 9" in (recs[1].detail or "")


def _through_gpu_memory_path(tmp_path: Path, version: str | None, kernel: str) -> list[str]:
    """The argv GPU_MEMORY_PATH execs on a node whose /proc/driver/nvidia/version reads
    ``version`` (None: no driver) and whose ``uname -r`` is ``kernel`` (printf stands in
    for ib_write_bw and prints each argument it gets on its own line)."""
    import subprocess

    from provision.checks.gpudirect import GPU_MEMORY_PATH, NIC_NUMA_PIN, write_bw

    version_file = tmp_path / "version"
    if version is not None:
        version_file.write_text(version)
    pinned = write_bw("mlx5_0", 3, 18515, roce=False, server="gpu 002")
    assert pinned[:5] == ["sh", "-c", NIC_NUMA_PIN, "sh", "mlx5_0"]
    argv = pinned[5:]
    assert argv[:3] == ["sh", "-c", GPU_MEMORY_PATH] and argv[4] == "ib_write_bw"
    script = (GPU_MEMORY_PATH.replace("/proc/driver/nvidia/version", str(version_file))
              .replace("$(uname -r)", f"'{kernel}'"))
    out = subprocess.run(["sh", "-c", script, "sh", "printf", "%s\\n", *argv[5:]],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    return out.splitlines()


OPEN = ("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  565.57.01  Release Build  "
        "(dvs-builder@U16-A24-9-2)  Thu Oct 10 12:15:00 UTC 2024\nGCC version:  gcc 13.3.0\n")
PROPRIETARY = ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 "
               "UTC 2023\nGCC version:  gcc 11.4.0\n")


@pytest.mark.parametrize(("version", "kernel", "dmabuf"), [
    (OPEN, "6.8.0-90-generic", True),          # Ubuntu 24.04
    (OPEN, "5.14.0-427.13.1.el9_4.x86_64", True),  # RHEL 9.4
    (OPEN, "5.12.0", True),
    (OPEN, "5.4.0-150-generic", False),        # before dma-buf import in the RDMA core
    (OPEN, "4.18.0-513.5.1.el8_9.x86_64", False),
    (PROPRIETARY, "6.8.0-90-generic", False),  # no DMA-BUF export: nvidia-peermem
    (None, "6.8.0-90-generic", False),
])
def test_gpu_memory_goes_through_dma_buf_where_nccl_would_else_peermem(
        tmp_path: Path, version: str | None, kernel: str, dmabuf: bool) -> None:
    """NCCL uses DMA-BUF whenever the driver supports it (open kernel modules, kernel
    >= 5.12), else nvidia-peermem; plain --use_cuda cannot register GPU memory without
    peermem, so the check must follow the same path."""
    got = _through_gpu_memory_path(tmp_path, version, kernel)
    assert "--use_cuda=3" in got and ("--use_cuda_dmabuf" in got) is dmabuf
    if dmabuf:   # perftest refuses --use_cuda_dmabuf before --use_cuda
        assert got[got.index("--use_cuda=3") + 1] == "--use_cuda_dmabuf"
    assert got[:2] == ["-d", "mlx5_0"] and got[-1] == "gpu 002"   # passed through as they are


def test_a_gpu_memory_run_that_reports_no_bandwidth_fails_its_path_not_the_run() -> None:
    """perftest prints why before any banner (a build without DMA-BUF: "Unsupported memory
    type"; proprietary modules: "DMA-BUF is not supported on this GPU", perftest
    src/cuda_memory.c): that port fails, the other ports and the node's report go on."""
    import json

    from provision.judge import failed

    ctx = _ctx("small.yaml", "gpu001")
    assert ctx.plan is not None
    doc = json.loads(_collector_json({"mlx5_0->mlx5_1": " Unsupported memory type\n",
                                      ALL: f"{MARK} mlx5_1->mlx5_2\n Couldn't allocate MR\n"}))
    doc["commands"]["mlx5_0->mlx5_1"]["stderr"] = "DMA-BUF is not supported on this GPU\n"
    check = registry.get("gpudirect")
    recs = check.measurements(check.parse(Raw("gpu001", json.dumps(doc), "", 0)), ctx.plan)
    ran = {r.peer: r for r in recs if r.metric == "tool_ran_ok"}
    assert set(ran) == {"mlx5_0->mlx5_1", "mlx5_1->mlx5_2"} and all(map(failed, ran.values()))
    assert "DMA-BUF is not supported on this GPU" in (ran["mlx5_0->mlx5_1"].detail or "")
    assert "all ports at once" in (ran["mlx5_1->mlx5_2"].detail or "")


@pytest.mark.parametrize(("modules", "ok", "path"), [
    ({"nvidia": True, "nvidia_peermem": True, "nvidia_open": False}, 1, "nvidia-peermem"),
    ({"nvidia": True, "nvidia_peermem": False, "nvidia_open": True}, 1, "DMA-BUF"),
    ({"nvidia": True, "nvidia_peermem": True, "nvidia_open": True}, 1, "DMA-BUF"),
    ({"nvidia": True, "nvidia_peermem": False, "nvidia_open": False}, 0, "none"),
    ({"nvidia": False, "nvidia_peermem": False, "nvidia_open": False}, 0, "none"),
])
def test_a_gpudirect_path_is_peermem_or_the_open_modules_dma_buf(
        modules: dict[str, bool], ok: int, path: str) -> None:
    from provision.checks.gpudirect import gpudirect_path_record
    from provision.judge import failed

    ctx = _ctx("small.yaml", "gpu001")
    assert ctx.plan is not None
    rec = gpudirect_path_record(ctx.plan, modules, "gpudirect")
    assert rec.value == ok and failed(rec) is (ok == 0)
    assert f"path: {path}" in (rec.detail or "")


def test_without_ib_write_bw_the_check_says_so_once() -> None:
    import json

    ctx = _ctx("small.yaml", "gpu001")
    assert ctx.plan is not None
    doc = json.loads(_collector_json({"mlx5_0->mlx5_1": ""}))
    doc["tools"] = {"ib_write_bw": None}
    check = registry.get("gpudirect")
    recs = check.measurements(check.parse(Raw("gpu001", json.dumps(doc), "", 0)), ctx.plan)
    tools = [r for r in recs if r.metric == "tool_present"]
    assert len(tools) == 1 and tools[0].value == 0 and "ib_write_bw" in (tools[0].detail or "")


def test_a_counter_stuck_at_its_maximum_is_reported_not_passed() -> None:
    # link_downed is an 8-bit PortCounters field (kernel sysfs.c): at 255 it counts no further,
    # so "255 -> 255" proves nothing; a counter that fell was cleared during the runs
    got = _counter_records(
        "{dev} 1 link_downed 255\n{dev} 1 symbol_error 40\n{dev} 1 port_rcv_errors 65530\n",
        "{dev} 1 link_downed 255\n{dev} 1 symbol_error 2\n{dev} 1 port_rcv_errors 65535\n")
    dev = got[0].peer.split("/")[0]
    recs = {(r.metric, (r.detail or "").split(":")[0]): r for r in got}
    stuck = recs[("ib_counter_saturated", f"{dev} port 1 link_downed")]
    assert stuck.value == 1.0 and stuck.max == 0.0 and "perfquery -R" in (stuck.detail or "")
    assert ("ib_counter_delta", f"{dev} port 1 link_downed") not in recs
    cleared = recs[("ib_counter_delta", f"{dev} port 1 symbol_error")]
    assert cleared.value == 2.0 and "cleared or reset" in (cleared.detail or "")
    full = recs[("ib_counter_delta", f"{dev} port 1 port_rcv_errors")]
    assert full.value == 5.0 and "at least" in (full.detail or "")


@pytest.mark.skipif(shutil.which("numactl") is None,
                    reason="numactl is not installed (scripts/system-deps.sh installs it)")
@pytest.mark.parametrize(("numa_node", "policy"), [
    ("0", "policy: bind"),        # the NIC's node: CPUs and memory bound there
    ("-1", "policy: default"),    # no NUMA node reported: run as is
    (None, "policy: default"),    # no such sysfs file: run as is
])
def test_each_run_is_bound_to_its_nics_numa_node(tmp_path: Path, numa_node: str | None,
                                                 policy: str) -> None:
    """NIC_NUMA_PIN with the real numactl on this machine (node 0), the device's sysfs
    numa_node file pointed at a temporary one; `numactl --show` stands in for ib_write_bw
    and prints the policy the run got."""
    import subprocess

    from provision.checks.gpudirect import NIC_NUMA_PIN

    sysfs = tmp_path / "infiniband"
    if numa_node is not None:
        (sysfs / "mlx5_3" / "device").mkdir(parents=True)
        (sysfs / "mlx5_3" / "device" / "numa_node").write_text(numa_node + "\n")
    script = NIC_NUMA_PIN.replace("/sys/class/infiniband", str(sysfs))
    out = subprocess.run(["sh", "-c", script, "sh", "mlx5_3", "numactl", "--show"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    assert out.splitlines()[0] == policy
    if numa_node == "0":
        assert "nodebind: 0" in out and "membind: 0" in out


def test_the_report_says_where_each_run_was_bound() -> None:
    from provision.checks.gpudirect import numa_note

    def data(tools: dict[str, str | None], numa: dict[str, str]) -> Collected:
        rdma = [{"name": d, "pci": {"numa_node": n}} for d, n in numa.items()]
        return Collected("n", "n", {"rdma": rdma}, tools, {}, {})

    assert numa_note(data({"numactl": "/usr/bin/numactl"}, {"mlx5_0": "0", "mlx5_1": "1"}),
                     ["mlx5_0", "mlx5_1"]) == "pinned: mlx5_0 to NUMA node 0, mlx5_1 to NUMA node 1"
    assert numa_note(data({"numactl": "/usr/bin/numactl"}, {"mlx5_0": "-1"}), ["mlx5_0"]) == \
        "pinned: mlx5_0 not (no NUMA node)"
    assert numa_note(data({"numactl": None}, {"mlx5_0": "0"}), ["mlx5_0"]) == \
        "not pinned: numactl is not installed"
    assert numa_note(data({}, {}), ["mlx5_0"]) == ""

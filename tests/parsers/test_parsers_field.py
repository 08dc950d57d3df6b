"""Outputs from the field (tests/parsers/fixtures/*/SOURCES.md): numbers and verdicts.

Each sample is what someone pasted in a public issue: fragments that start
mid-table, cut rows, elisions, launcher prefixes, older and newer layouts,
and the failing runs. ``forge ingest auto`` must read each one with the
numbers the tool printed, and ``forge analyze`` must pass or fail it as the
tool's own output says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from parsers_support import EXTRA, one, pick

from provision import parsers
from provision.analyze import analyze

#: (file, node the output names or None for "needs --node", verdict, [(metric, match, value)])
FIELD: list[tuple[str, str | None, str, list[tuple[str, dict[str, Any], float]]]] = [
    # --- nccl-tests
    ("nccl-tests/coreweave43-gb200-nvl72-rank71-tail-fragment.txt", "slurm-gb200-207-171",
     "pass", [("nccl_busbw", {}, 834.57), ("nccl_algbw", {}, 423.16),
              ("nccl_avg_busbw", {}, 745.53), ("nccl_out_of_bounds", {}, 0),
              ("nccl_busbw_by_size", {"detail_has": "536870912 B in-place"}, 576.74)]),
    ("nccl-tests/awsk8stester503-p5-mpirun-tag-output-prefix-truncated.txt", None, "pass",
     [("nccl_busbw", {}, 0.0), ("nccl_wrong", {}, 0),
      ("nccl_busbw_by_size", {"detail_has": "32 B out-of-place"}, 0.0)]),
    ("nccl-tests/mooncake3484-headerless-rows-truncated.txt", None, "pass",
     [("nccl_busbw", {}, 300.51), ("nccl_algbw", {}, 171.72),
      ("nccl_busbw_by_size", {"detail_has": "8388608 B in-place"}, 182.45)]),
    ("nccl-tests/nccltests5-2018-nccl1-bytes-N-res-layout-unhandled-cuda-error.txt", "node03",
     "fail", [("tool_ran_ok", {"detail_has": "'unhandled cuda error'"}, 0)]),
    ("nccl-tests/nccltests322-rows-then-multihost-unhandled-cuda-error-truncated.txt",
     "HCA-128", "fail", [("tool_ran_ok", {"detail_has": "common.cu:1204"}, 0),
                         ("nccl_busbw", {}, 367.29), ("nccl_algbw", {}, 183.83)]),
    ("nccl-tests/rccltests50-mi210-nthreads-colon-layout-internal-error.txt", "sharbox-ultra",
     "fail", [("tool_ran_ok", {"detail_has": "internal error"}, 0)]),
    ("nccl-tests/nccltests219-2node-a6000-internal-error-mpirun-abort.txt", "fengyun", "fail",
     [("tool_ran_ok", {"detail_has": "(with fengyun416)"}, 0)]),
    ("nccl-tests/nccltests280-4x4090-error-first-lost-hashes-truncated.txt", "c2211f46f318",
     "fail", [("tool_ran_ok", {"detail_has": "'unhandled CUDA error'"}, 0),
              ("nccl_busbw_by_size", {"detail_has": "16 B in-place"}, 0.0)]),
    ("nccl-tests/nccltests287-1x5090-small-sizes-truncated.txt", "GENOA-06", "pass",
     [("nccl_algbw", {}, 0.01), ("nccl_busbw_by_size", {"detail_has": "64 B out-of-place"}, 0.0)]),
    ("nccl-tests/nccltests66-test-cuda-failure-unknown-error-no-host.txt", None, "fail",
     [("tool_ran_ok", {"detail_has": "common.cu:730 'unknown error'"}, 0)]),
    # --- nvidia-smi topo -m
    ("nvidia-smi-topo/k8s53497-8gpu-mlx4_0-phb-2017-truncated.txt", None, "fail",
     [("gpu_nic_distance", {"gpu": 0, "peer": "n1:mlx4_0"}, 4),
      ("gpu_nic_distance", {"gpu": 4, "peer": "n1:mlx4_0"}, 6),
      ("topo_nvlinks", {"gpu": 0, "peer": "n1:1"}, 0)]),
    ("nvidia-smi-topo/nccltests78-16gpu-nv6-10nics-mlx5-truncated.txt", None, "pass",
     [("topo_nvlinks", {"gpu": 0, "peer": "n1:15"}, 6),
      ("gpu_nic_distance", {"gpu": 2, "peer": "n1:mlx5_1"}, 2),
      ("gpu_nic_distance", {"gpu": 0, "peer": "n1:mlx5_9"}, 6)]),
    ("nvidia-smi-topo/nccl933-8gpu-nv8-9nics-NICn-names-truncated.txt", None, "pass",
     [("topo_nvlinks", {"gpu": 0, "peer": "n1:7"}, 8), ("gpu_numa_node", {"gpu": 6}, 1),
      ("gpu_nic_distance", {"gpu": 0, "peer": "n1:NIC2"}, 2)]),
    ("nvidia-smi-topo/deepep60-topo-mp-8gpu-14nics-pcie-only-truncated.txt", None, "pass",
     [("topo_nvlinks", {"gpu": 0, "peer": "n1:1"}, 0),
      ("gpu_nic_distance", {"gpu": 3, "peer": "n1:NIC7"}, 2), ("gpu_numa_node", {"gpu": 3}, 0)]),
    ("nvidia-smi-topo/nccl1453-8x-h100-nv18-9nics-tabs-nic-rows-truncated.txt", None, "pass",
     [("topo_nvlinks", {"gpu": 3, "peer": "n1:7"}, 18),
      ("gpu_nic_distance", {"gpu": 0, "peer": "n1:NIC8"}, 2), ("gpu_numa_node", {"gpu": 7}, 1)]),
    # --- ibstat / ibv_devinfo
    ("ibstat/gpud482-cx7-mlx5_10-down-polling-elided-guids.txt", None, "fail",
     [("nic_port_up", {"detail_has": "mlx5_10 port 1 Down/Polling"}, 0)]),
    ("ibstat/gpud752-elided-head-mlx5_7-active-ibpanic-mlx5_8.txt", None, "fail",
     [("nic_port_up", {"detail_has": "mlx5_7"}, 1), ("nic_port_rate", {}, 200),
      ("tool_ran_ok", {"detail_has": "stat of IB device 'mlx5_8' failed"}, 0)]),
    ("ibstat/rdmacore847-ibwarn-trace-interleaved-cx3-port1-disabled-truncated.txt", None,
     "fail", [("nic_port_up", {"detail_has": "port 1 Down/Disabled"}, 0),
              ("nic_port_up", {"detail_has": "port 2 Active"}, 1), ("nic_port_rate", {}, 56)]),
    ("ibstat/gpud99-cx6dx-mlx5_8-down-disabled-cut-after-state.txt", None, "fail",
     [("nic_port_up", {"detail_has": "mlx5_8 port 1 Down/Disabled"}, 0), ("nic_count", {}, 1)]),
    ("ibv_devinfo/deepep60-cx6dx-port-down-ethernet-then-cx7-cut.txt", None, "fail",
     [("nic_port_up", {"detail_has": "mlx5_12 port 1 Down"}, 0), ("nic_count", {}, 2),
      ("nic_port_mtu", {}, 1024)]),
    ("ibv_devinfo/deepep38-starts-mid-port-cx7-roce-active-then-cut.txt", None, "pass",
     [("nic_port_up", {"detail_has": "mlx5_2 port 1 Active"}, 1), ("nic_port_mtu", {}, 4096),
      ("nic_count", {}, 2)]),
    ("ibv_devinfo/ompi6184-v-mofed-tabs-cx5-caps-cut-before-ports.txt", None, "pass",
     [("nic_count", {"detail_has": "mlx5_1"}, 1)]),
    # --- kernel logs
    ("dmesg-xid/nvsentinel155-multiline-fallen-off-bus-no-xid-570.txt", None, "fail",
     [("xid_events", {"detail_has": "79 on PCI:0000:b3:00.0", "bus_id": "0000:b3:00.0"}, 1)]),
    ("dmesg-xid/bumblebee554-2014-gpu-at-fallen-off-bus-twice.txt", None, "fail",
     [("xid_events", {"detail_has": "PCI:0000:01:00.0 first at 49.261458"}, 2)]),
    ("dmesg-xid/bumblebee677-2015-xid32-twice-xid31.txt", None, "fail",
     [("xid_events", {"detail_has": "Xid 32 "}, 2), ("xid_events", {"detail_has": "Xid 31 "}, 1)]),
    ("dmesg-xid/ogkm1150-kernel-prefix-no-time-xid45-after-149-145.txt", None, "fail",
     [("xid_events", {"bus_id": "0000:dc:00"}, 2), ("xid_events", {"bus_id": "0000:97:00"}, 1)]),
    ("dmesg-xid/gpud46-dmesg-ctime-quoted-xid13-xid109.txt", None, "fail",
     [("xid_events", {"detail_has": "Xid 13 on PCI:0000:cb:00 first at Fri Aug 30 11:43:09"}, 3),
      ("xid_events", {"detail_has": "CTX SWITCH TIMEOUT"}, 1)]),
    ("dmesg-xid/gpud1174-kmsg-bare-xid149-145-94-gb200.txt", None, "fail",
     [("xid_events", {"bus_id": "0019:01:00"}, 1), ("xid_events", {"detail_has": "Xid 94"}, 1),
      ("xid_events", {"detail_has": "RLW_RXPIPE Nonfatal"}, 1)]),
    # --- gpu-burn
    ("gpu-burn/gpuburn12-16gpu-all-faulty-negative-error-counts-exit0.txt", None, "fail",
     [("gpu_burn_ok", {"gpu": 15}, 0), ("gpu_burn_gflops", {"gpu": 10}, 6660),
      ("gpu_temperature", {"gpu": 15}, 52)]),
    ("gpu-burn/gpuburn69-8gpu-died-no-clients-alive.txt", None, "fail",
     [("gpu_burn_ok", {"gpu": 7, "detail_has": "DIED!"}, 0),
      ("tool_ran_ok", {"detail_has": "No clients are alive"}, 0)]),
    ("gpu-burn/gpuburn1-k40m-m4000-doubles-93C-truncated.txt", None, "pass",
     [("gpu_burn_gflops", {"gpu": 0}, 74), ("gpu_burn_gflops", {"gpu": 1}, 423),
      ("gpu_temperature", {"gpu": 0}, 93), ("gpu_burn_errors", {"gpu": 1}, 0)]),
    ("gpu-burn/gpuburn52-4x-k80-load-module-died-snipped.txt", None, "fail",
     [("tool_ran_ok", {"detail_has": "load module"}, 0), ("gpu_burn_ok", {"gpu": 0}, 0),
      ("gpu_temperature", {"gpu": 2}, 37)]),
    ("gpu-burn/gpuburn123-8x-v100-cuda-error-unknown-ok-truncated.txt", None, "fail",
     [("tool_ran_ok", {"detail_has": "CUDA_ERROR_UNKNOWN"}, 0), ("gpu_burn_ok", {"gpu": 3}, 1),
      ("gpu_temperature", {"gpu": 6}, 43)]),
    ("gpu-burn/gpuburn7-6gpu-titan-2080ti-load-module-all-ok.txt", None, "fail",
     [("tool_ran_ok", {"detail_has": "load module"}, 0), ("gpu_burn_ok", {"gpu": 5}, 1)]),
    # --- dcgmi diag, perftest, nvbandwidth
    ("dcgmi-diag/godcgm52-fragment-gpu-memory-fail-gpu0-busy.txt", None, "fail",
     [("dcgm_test_pass", {"gpu": 0, "detail_has": "cuCtxCreate"}, 0),
      ("dcgm_test_pass", {"gpu": 1}, 1)]),
    ("perftest/perftest273-post-list-bw-ib0-roce-8B-gbits.txt", None, "pass",
     [("ib_write_bw", {"detail_has": "8 B, ib0"}, 0.48), ("ib_msg_rate", {}, 7.4986)]),
    ("nvbandwidth/nvbandwidth50-v0.8-6x-a6000-d2d-read-ce-elided.txt", None, "pass",
     [("nvbandwidth", {"gpu": 0, "peer": "n1:3"}, 21.95),
      ("nvbandwidth", {"gpu": 5, "peer": "n1:4"}, 26.35)]),
    ("nvbandwidth/nvbandwidth24-h100-sm-h2d-d2h-quoted-lost-indent.txt", None, "pass",
     [("nvbandwidth", {"gpu": 7, "detail_has": "CPU -> GPU7"}, 35.06),
      ("nvbandwidth", {"gpu": 3, "detail_has": "CPU <- GPU3"}, 52.78)]),
    # --- nvidia-smi query CSV, nvlink, -q
    ("nvidia-smi-query-gpu/ksysguard27-index-first-units-loop-13-samples.txt", None, "pass",
     [("gpu_count", {}, 1)]),
    ("nvidia-smi-query-gpu/sysmoncenter57-rtx2060-name-busid-memory-units.txt", None, "pass",
     [("gpu_memory_total", {"gpu": 0}, 5934), ("gpu_temperature", {"gpu": 0}, 36),
      ("gpu_count", {}, 1)]),
    ("nvidia-smi-nvlink/azhpcdiag73-v100-gpu3-links-3-5-inactive-elided.txt", None, "fail",
     [("nvlink_links_down", {"gpu": 3, "detail_has": "3,5"}, 2),
      ("nvlink_link_speed", {"gpu": 3, "detail": "link 4"}, 25.781)]),
    ("nvidia-smi-nvlink/nccltests228-a100-12links-tabs-elided.txt", None, "pass",
     [("nvlink_links_up", {"gpu": 1}, 12), ("nvlink_link_speed", {"gpu": 2, "detail": "link 0"},
                                             25)]),
    ("nvidia-smi-q/gvisor10676-display-ecc-blocked-by-os-all-na.txt", None, "fail",
     [("tool_ran_ok", {"detail_has": "GPU access blocked by the operating system"}, 0)]),
    ("nvidia-smi-q/ogkm421-laptop-clocks-fragment-starts-mid-power.txt", None, "pass",
     [("gpu_sm_clock", {}, 435), ("gpu_sm_clock_max", {}, 1740)]),
]


def _ids() -> list[str]:
    return [f[0] for f in FIELD]


def test_every_field_sample_is_listed_and_sourced() -> None:
    on_disk = {f"{p.parent.name}/{p.name}" for p in EXTRA.glob("*/*.txt")}
    listed = {f[0] for f in FIELD}
    assert listed <= on_disk
    assert len(listed) >= 40
    for rel in listed:
        sources = (EXTRA / rel).parent / "SOURCES.md"
        text = sources.read_text(encoding="utf-8")
        assert f"## {Path(rel).name}" in text, f"{rel} has no entry in {sources}"
        entry = text.split(f"## {Path(rel).name}", 1)[1].split("\n## ", 1)[0]
        assert "https://github.com/" in entry, f"{rel}: no URL"


@pytest.mark.parametrize(("rel", "host", "verdict", "checks"), FIELD, ids=_ids())
def test_field_sample_numbers_and_verdict(rel: str, host: str | None, verdict: str,
                                          checks: list[tuple[str, dict[str, Any], float]]) -> None:
    text = (EXTRA / rel).read_text(encoding="utf-8")
    tool = rel.split("/")[0]
    parts = parsers.ingest_parts("auto", text, node="n1", source_name=rel)
    assert [p.tool for p in parts] == [tool]
    recs = parts[0].records
    assert {r.node for r in recs} == {host or "n1"}
    for metric, match, value in checks:
        got = one(recs, metric, **dict(match))
        assert got.value == pytest.approx(value), (metric, match)
    result = analyze(recs)
    assert ("fail" if result.failed else "pass") == verdict, [
        f"{f.metric}: {f.reason}" for f in result.failing]
    # a failure is carried in the tool's words
    for f in result.failing:
        if f.metric == "tool_ran_ok":
            assert f.detail, f


def test_failing_samples_keep_the_tools_message_in_the_finding() -> None:
    text = (EXTRA / "gpu-burn/gpuburn69-8gpu-died-no-clients-alive.txt").read_text()
    result = analyze(parsers.ingest_text("auto", text, node="n1"))
    details = {f.detail for f in result.failing}
    assert any(d and "No clients are alive" in d for d in details)
    assert pick(parsers.ingest_text("auto", text, node="n1"), "gpu_burn_ok", value=0.0)


def test_journalctl_names_the_node_and_a_log_without_events_passes() -> None:
    rel = "dmesg-xid/pop3363-journalctl-k-host-nvidia-stack-no-xid.txt"
    recs = parsers.ingest_text("dmesg-xid", (EXTRA / rel).read_text(encoding="utf-8"),
                               node="given")
    x = one(recs, "xid_events")
    assert x.node == "oryx.wonder.boy" and x.value == 0 and "14 kernel log lines" in (x.detail or "")
    assert not analyze(recs).failed
    assert f"## {Path(rel).name}" in (EXTRA / "dmesg-xid" / "SOURCES.md").read_text()

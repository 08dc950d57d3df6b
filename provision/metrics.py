"""The metric vocabulary shared by checks, parsers, the analyzer and sweeps.

A metric name means the same thing everywhere: its unit, which direction is
bad, and whether a single bad reading is fatal (drain at once) or needs to
persist. The analyzer falls back to two-sided scoring for names not listed
here, unless a record says ``better`` itself. This registry is the one place that
says which direction is good: rules, sweep limits and the analyzer all ask
:func:`direction`. Add new metrics to the section
of the area that produces them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Better = Literal["higher", "lower", "equal"]


@dataclass(frozen=True)
class MetricInfo:
    name: str
    unit: str
    better: Better
    description: str
    #: a single failing reading is proof of a broken part (drain at once)
    fatal: bool = False
    #: the healthy value is a constant (a counter that stays 0, a flag that stays 1):
    #: any deviation matters, spread statistics do not apply
    zero_spread: bool = False


def _m(name: str, unit: str, better: Better, description: str, *, fatal: bool = False,
       zero_spread: bool = False) -> MetricInfo:
    return MetricInfo(name, unit, better, description, fatal, zero_spread)


_ALL: list[MetricInfo] = [
    # --- inventory and conformance (node level unless noted)
    _m("gpu_count", "count", "higher", "GPUs visible to the driver", fatal=True, zero_spread=True),
    _m("gpu_memory_total", "MiB", "higher", "framebuffer memory of one GPU", zero_spread=True),
    _m("gpu_persistence_mode", "bool", "higher", "persistence mode enabled (1)", zero_spread=True),
    _m("gpu_ecc_mode", "bool", "higher", "ECC enabled (1)", zero_spread=True),
    _m("pcie_link_gen", "gen", "higher", "current PCIe link generation of a GPU or NIC"),
    _m("pcie_link_width", "lanes", "higher", "current PCIe link width of a GPU or NIC"),
    _m("pcie_replay_count", "count", "lower", "PCIe replays (link-level retries)"),
    _m("pcie_iommu_translated", "bool", "lower",
       "the IOMMU translates a GPU's or NIC's DMA (1), so P2P goes through the root complex",
       zero_spread=True),
    _m("pcie_acs_redirect", "bool", "lower",
       "a PCIe bridge's ACS control redirects P2P traffic to the root complex (1)",
       zero_spread=True),
    _m("nic_count", "count", "higher", "ConnectX/BlueField adapters found", zero_spread=True),
    _m("nic_port_up", "bool", "higher", "port state Active / LinkUp (1) or not (0)",
       zero_spread=True),
    _m("nic_port_rate", "Gb/s", "higher", "negotiated port rate"),
    _m("nic_symbol_errors", "count", "lower", "port symbol error counter", zero_spread=True),
    _m("nic_link_downed", "count", "lower", "port link-downed counter", zero_spread=True),
    _m("nic_rcv_errors", "count", "lower", "port receive error counter", zero_spread=True),
    _m("nic_link_error_recovery", "count", "lower", "port link error recovery counter",
       zero_spread=True),
    _m("nic_link_integrity_errors", "count", "lower", "port local link integrity error counter",
       zero_spread=True),
    _m("nic_buffer_overrun_errors", "count", "lower",
       "port excessive buffer overrun error counter", zero_spread=True),
    _m("gpu_pcie_replay_increase", "count", "lower",
       "PCIe replays of a GPU's link since the node's previous sweep (NVML)", zero_spread=True),
    _m("nvlink_crc_errors_total", "count", "lower",
       "NVLink CRC errors of one GPU over all its links (flit and data)"),
    _m("nvlink_error_increase", "count", "lower",
       "NVLink replay or recovery errors of one link, or CRC errors of one GPU, since the "
       "node's previous sweep",
       zero_spread=True),
    _m("roce_lossless_discards", "count", "lower",
       "packets a RoCE port dropped in its lossless (PFC) priority for lack of buffer"),
    _m("roce_pfc_enabled", "bool", "higher",
       "PFC is on the spec's lossless priority of a RoCE port's netdevs (1)", zero_spread=True),
    _m("roce_link_down_events", "count", "lower", "times a RoCE port's link went down"),
    _m("roce_pause_storm_errors", "count", "lower",
       "times a RoCE port stalled past its pause-storm threshold and stopped pausing"),
    _m("roce_crc_errors", "count", "lower", "frames a RoCE port dropped for a bad FCS"),
    _m("roce_symbol_errors", "count", "lower", "PCS symbol errors of a RoCE port"),
    _m("host_uptime", "s", "higher", "seconds since the node booted"),
    _m("roce_rx_discards_phy", "count", "lower", "packets a RoCE port dropped, all priorities"),
    _m("roce_lossless_pause_rx", "count", "lower",
       "PFC pause frames a RoCE port received in its lossless priority"),
    _m("roce_lossless_pause_tx", "count", "lower",
       "PFC pause frames a RoCE port sent in its lossless priority"),
    _m("roce_out_of_sequence", "count", "lower", "out-of-sequence RoCE packets received"),
    _m("roce_packet_seq_err", "count", "lower", "RoCE packet sequence (NAK) errors"),
    _m("roce_out_of_buffer", "count", "lower", "RoCE drops for lack of receive WQEs"),
    _m("roce_cnp_sent", "count", "lower", "RoCE congestion notifications sent (DCQCN)"),
    _m("roce_cnp_handled", "count", "lower", "RoCE congestion notifications handled (DCQCN)"),
    _m("nic_counter_increase", "count", "lower",
       "increase of an IB port error counter since the node's previous sweep", zero_spread=True),
    _m("ib_counter_saturated", "bool", "lower",
       "an IB port error counter sits at its maximum (1) and hides new errors until cleared",
       zero_spread=True),
    _m("host_memory", "GiB", "higher", "host memory visible to the OS"),
    _m("cpu_count", "count", "higher", "logical CPUs visible to the OS", zero_spread=True),
    _m("tool_present", "bool", "higher", "a required tool is installed (1)", zero_spread=True),
    _m("slurm_node_ok", "bool", "higher", "Slurm reports the node usable (1)", zero_spread=True),
    # --- NVLink
    _m("nvlink_links_up", "count", "higher", "NVLink links up on a GPU", zero_spread=True),
    _m("nvlink_link_speed", "GB/s", "higher", "speed of one NVLink link"),
    _m("nvlink_p2p_bandwidth", "GB/s", "higher", "GPU-to-GPU copy bandwidth over a bridge"),
    # --- memory and compute
    _m("hbm_bandwidth", "GB/s", "higher", "device memory copy bandwidth of one GPU"),
    _m("gemm_tflops", "TFLOP/s", "higher", "sustained dense GEMM throughput during burn-in"),
    _m("sdc_mismatch", "count", "lower", "GEMM checksums differing from the cohort or itself",
       fatal=True, zero_spread=True),
    _m("gpu_burn_gflops", "Gflop/s", "higher", "gpu-burn throughput"),
    _m("gpu_burn_errors", "count", "lower", "gpu-burn compare errors", fatal=True,
       zero_spread=True),
    # --- health counters (sweeps)
    _m("ecc_uncorrected_volatile", "count", "lower", "uncorrectable ECC errors since boot",
       fatal=True, zero_spread=True),
    _m("ecc_uncorrected_aggregate", "count", "lower", "uncorrectable ECC errors, lifetime",
       zero_spread=True),
    _m("ecc_corrected_volatile", "count", "lower", "correctable ECC errors since boot"),
    _m("remapped_rows_pending", "count", "lower", "row remap pending (needs a GPU reset)",
       zero_spread=True),
    _m("remapped_rows_failed", "count", "lower", "row remapping failed", fatal=True,
       zero_spread=True),
    _m("retired_pages_pending", "count", "lower", "page retirement pending", zero_spread=True),
    _m("xid_events", "count", "lower", "Xid events in the kernel log", zero_spread=True),
    _m("gpu_temperature", "C", "lower", "GPU core temperature"),
    _m("gpu_memory_temperature", "C", "lower", "HBM temperature"),
    # under the same load, a GPU drawing less than its peers is capped or throttled (the
    # burn-in floor is 0.85 x the board limit, provision.expectations); more is no fault
    _m("gpu_power", "W", "higher", "board power draw"),
    _m("gpu_power_fraction", "ratio", "higher", "power draw over the board power limit"),
    _m("gpu_sm_clock", "MHz", "higher", "SM clock"),
    _m("clocks_event_thermal", "ratio", "lower",
       "share of samples with a thermal slowdown clocks-event reason active"),
    _m("clocks_event_power", "ratio", "lower",
       "share of samples with a power-cap clocks-event reason active"),
    _m("gpu_missing", "bool", "lower", "a GPU the profile expects is not visible", fatal=True,
       zero_spread=True),
    # --- fabric and collectives
    _m("gpudirect_bw", "Gb/s", "higher", "ib_write_bw --use_cuda between a GPU and a NIC"),
    _m("ib_write_bw", "Gb/s", "higher", "perftest ib_write_bw peak average bandwidth"),
    _m("ib_read_bw", "Gb/s", "higher", "perftest ib_read_bw average bandwidth"),
    _m("ib_send_bw", "Gb/s", "higher", "perftest ib_send_bw average bandwidth"),
    _m("ib_write_lat", "us", "lower", "perftest latency (typical)"),
    _m("ib_read_lat", "us", "lower", "perftest latency (typical)"),
    _m("ib_send_lat", "us", "lower", "perftest latency (typical)"),
    _m("nccl_busbw", "GB/s", "higher", "nccl-tests bus bandwidth at the largest message size"),
    _m("nccl_algbw", "GB/s", "higher", "nccl-tests algorithm bandwidth at the largest size"),
    _m("nccl_avg_busbw", "GB/s", "higher", "nccl-tests 'Avg bus bandwidth' line"),
    _m("nccl_busbw_pair", "GB/s", "higher",
       "nccl-tests all-reduce bus bandwidth of one NVLink-bridged pair (-g 2)"),
    _m("nccl_busbw_alltoall", "GB/s", "higher",
       "nccl-tests all-to-all bus bandwidth across nodes at the largest size"),
    _m("pcie_h2d_bw", "GB/s", "higher", "pinned host-to-device copy bandwidth of one GPU"),
    _m("pcie_d2h_bw", "GB/s", "higher", "pinned device-to-host copy bandwidth of one GPU"),
    _m("pcie_link_gen_load", "gen", "higher",
       "PCIe link generation sampled while a host copy runs", zero_spread=True),
    _m("pcie_link_width_load", "lanes", "higher",
       "PCIe link width sampled while a host copy runs", zero_spread=True),
    _m("gpudirect_bw_aggregate", "Gb/s", "higher",
       "GPUDirect RDMA write bandwidth per port while every compute port runs at once"),
    _m("pcie_replay_delta", "count", "lower",
       "PCIe replays of a GPU's link while a workload ran (NVML replay counter)"),
    _m("ib_counter_delta", "count", "lower",
       "increase of an IB port error counter while the GPUDirect runs ran"),
    _m("topology_match", "bool", "higher",
       "the node's topo -m fingerprint equals the golden node's (1)", zero_spread=True),
    _m("nccl_transport_ok", "bool", "higher",
       "every inter-node NCCL channel ran NET/IB with GPUDirect RDMA (1); sockets or "
       "host-staged copies (0)", zero_spread=True),
    _m("nccl_wrong", "count", "lower", "nccl-tests #wrong results", fatal=True, zero_spread=True),
    _m("nvbandwidth", "GB/s", "higher", "nvbandwidth test case bandwidth"),
    _m("dcgm_test_pass", "bool", "higher", "a dcgmi diag test passed (1) or failed (0)",
       zero_spread=True),
    # --- parsers of tool output (provision.parsers, forge ingest)
    _m("tool_ran_ok", "bool", "higher",
       "the tool ran and reported results (1), or printed why it could not (0)", zero_spread=True),
    _m("nic_port_mtu", "bytes", "equal", "active MTU of an RDMA port (ibv_devinfo)"),
    _m("pcie_link_gen_max", "gen", "higher", "maximum PCIe generation of a GPU's link"),
    _m("pcie_link_width_max", "lanes", "higher", "maximum PCIe width of a GPU's link"),
    _m("remapped_rows_correctable", "count", "lower", "rows remapped for correctable errors"),
    _m("remapped_rows_uncorrectable", "count", "lower",
       "rows remapped for uncorrectable errors"),
    _m("retired_pages", "count", "lower", "retired framebuffer pages (cause in detail)"),
    _m("gpu_power_limit", "W", "equal", "enforced board power limit"),
    _m("gpu_sm_clock_max", "MHz", "higher", "maximum SM clock"),
    _m("clocks_event_hw_slowdown", "ratio", "lower",
       "share of samples with the HW Slowdown clocks-event reason active"),
    _m("clocks_event_hw_power_brake", "ratio", "lower",
       "share of samples with the HW Power Brake Slowdown reason active (PSU/board signal)"),
    _m("clocks_event_hw_thermal", "ratio", "lower",
       "share of samples with the HW Thermal Slowdown reason active"),
    _m("gpu_numa_node", "index", "equal", "NUMA node a GPU is attached to (topo -m)"),
    _m("topo_nvlinks", "count", "equal", "bonded NVLinks between a GPU pair (topo -m NV#)"),
    _m("gpu_nic_distance", "rank", "lower",
       "PCIe distance GPU to NIC: 2 PIX, 3 PXB, 4 PHB, 5 NODE, 6 SYS (topo -m)"),
    _m("gpu_p2p_ok", "bool", "higher", "peer access between a GPU pair is supported (topo -p2p)"),
    _m("nvlink_links_down", "count", "lower", "NVLink links reported down", zero_spread=True),
    _m("nvlink_replay_errors", "count", "lower", "NVLink replay errors of one link"),
    _m("nvlink_recovery_errors", "count", "lower", "NVLink recovery errors of one link"),
    _m("nvlink_crc_errors", "count", "lower", "NVLink CRC errors of one link"),
    _m("nccl_busbw_by_size", "GB/s", "higher", "nccl-tests bus bandwidth at one size (detail)"),
    _m("nccl_out_of_bounds", "count", "lower", "nccl-tests 'Out of bounds values'",
       fatal=True, zero_spread=True),
    _m("ib_atomic_bw", "Gb/s", "higher", "perftest ib_atomic_bw average bandwidth"),
    _m("ib_atomic_lat", "us", "lower", "perftest atomic latency (typical)"),
    _m("ib_bw_by_size", "Gb/s", "higher", "perftest average bandwidth at one size (detail)"),
    _m("ib_msg_rate", "Mpps", "higher", "perftest message rate at the largest size"),
    _m("ib_lat_avg", "us", "lower", "perftest average latency (test in detail)"),
    _m("ib_lat_max", "us", "lower", "perftest maximum latency (test in detail)"),
    _m("ib_lat_p999", "us", "lower", "perftest 99.9th percentile latency (test in detail)"),
    _m("nvbandwidth_sum", "GB/s", "higher", "nvbandwidth SUM line of one test case"),
    _m("gpu_burn_ok", "bool", "higher", "gpu-burn verdict OK (1) or FAULTY (0)", fatal=True,
       zero_spread=True),
    _m("dcgm_pcie_bandwidth", "GB/s", "higher",
       "host-GPU bandwidth dcgmi diag's PCIe test reports"),
    _m("dcgm_pcie_latency", "us", "lower", "host-GPU latency dcgmi diag's PCIe test reports"),
    _m("sxid_events", "count", "lower", "NVSwitch SXid events in the kernel log",
       zero_spread=True),
    # --- acceptance checks (provision.checks)
    _m("nic_link_layer_ok", "bool", "higher", "a compute port runs the profile's link layer (1)",
       zero_spread=True),
    _m("nic_pcie_link_gen_ok", "bool", "higher",
       "a NIC's PCIe link trained at the profile's generation (1)", zero_spread=True),
    _m("nic_pcie_link_width_ok", "bool", "higher",
       "a NIC's PCIe link trained at the profile's width (1)", zero_spread=True),
    _m("gpu_model_ok", "bool", "higher", "the GPU is the profile's model (1)", zero_spread=True),
    _m("gpu_driver_ok", "bool", "higher", "the driver is on the spec's branch (1)",
       zero_spread=True),
    _m("gpu_ecc_mode_pending", "bool", "higher",
       "ECC stays enabled after the GPU's next reboot (1; nvidia-smi ecc.mode.pending)",
       zero_spread=True),
    _m("gpu_mig_mode", "bool", "equal", "MIG enabled (1) or disabled (0) now", zero_spread=True),
    _m("gpu_mig_mode_pending", "bool", "equal",
       "MIG enabled (1) or disabled (0) after the GPU's next reset", zero_spread=True),
    _m("gpu_power_default_limit", "W", "equal",
       "the power limit the driver restores when it reloads (power.default_limit)"),
    _m("gpu_remap_banks_none", "count", "lower",
       "memory banks with no spare row left to remap into (row remapper histogram)",
       zero_spread=True),
    _m("gpu_remap_banks_low", "count", "lower",
       "memory banks with few spare rows left (row remapper histogram)"),
    _m("gpu_vbios_uniform", "bool", "higher",
       "every GPU on the node runs the same VBIOS (1)", zero_spread=True),
    _m("gpu_inforom_uniform", "bool", "higher",
       "every GPU on the node has the same infoROM image (1)", zero_spread=True),
    _m("gpu_vbios_match", "bool", "higher",
       "the GPU's VBIOS equals bmc.firmware_baseline.gpu_vbios (1)", zero_spread=True),
    _m("nvlink_bridge_ok", "bool", "higher",
       "a GPU pair is bridged exactly as the profile says, all links (1)", zero_spread=True),
    _m("gpudirect_module_ok", "bool", "higher",
       "a GPUDirect RDMA path is loaded: nvidia-peermem, or the open kernel modules' DMA-BUF (1)",
       zero_spread=True),
    # --- health sweeps (provision.sweep)
    _m("node_reachable", "bool", "higher", "the sweep reached the node and its probes answered",
       zero_spread=True),
    _m("probe_ok", "bool", "higher", "a sweep probe ran to completion in its timeout (detail)",
       zero_spread=True),
    _m("xid_fatal_events", "count", "lower",
       "hardware Xid events of this boot (NVIDIA Xid catalog: reset GPU, reboot or "
       "service; provision.parsers.xid_catalog)", fatal=True, zero_spread=True),
    _m("gpu_recovery_action", "bool", "lower",
       "the driver's GPU recovery action (NVML) asks for a reset, reboot or drain (1)",
       fatal=True, zero_spread=True),
    _m("nic_port_count", "count", "higher", "RDMA ports the node shows", zero_spread=True),
    _m("driver_version_match", "bool", "higher", "GPU driver is on the spec's branch (1)",
       zero_spread=True),
    _m("nic_firmware_match", "bool", "higher", "NIC firmware equals the spec's version (1)",
       zero_spread=True),
]

REGISTRY: dict[str, MetricInfo] = {m.name: m for m in _ALL}


def info(name: str) -> MetricInfo | None:
    return REGISTRY.get(name)


def direction(name: str, declared: str | None = None) -> Better:
    """The good direction of a metric: the registry's; for a metric it does not list, the
    record's own ``better``, else two-sided. The one answer to "which side is bad?"."""
    known = REGISTRY.get(name)
    if known is not None:
        return known.better
    if declared in ("higher", "lower", "equal"):
        return declared  # type: ignore[return-value]
    return "equal"

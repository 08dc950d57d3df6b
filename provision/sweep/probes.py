"""The light, non-disruptive probes a sweep runs, as shell commands plus pure parsers.

One probe = one short command and one function from its output to
measurement records. The same command runs on the node itself (``--local``)
or through SSH (fan-out): all of a node's probes go as one script in one
connection, each wrapped in ``timeout`` and delimited by marker lines, so a
hung probe costs its own timeout and never the whole node.

Test hooks (documented in docs/sweeps.md): ``FORGE_SWEEP_XID_FILE`` and
``FORGE_SWEEP_DCGM_FILE`` make the Xid and DCGM probes read a file instead of
the kernel log / ``dcgmi``; they are read from the environment or from
``/etc/default/forge-health``. They exist to replay recorded real failures
on lab nodes.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from provision.measurement import Measurement
from provision.parsers.base import record
from provision.parsers.ib_counters import CLEAR, COUNTERS, METRIC, port_peer, saturated
from provision.sweep.expect import NodeExpectation

#: where ``forge requalify`` leaves the node's Xid high-water mark: "<boot id> <count>",
#: the number of hardware Xid lines of that boot a passed re-qualification accounted for
XID_ACK_FILE = "/var/lib/forge/xid-ack"
DEFAULTS_FILE = "/etc/default/forge-health"
#: nvidia-smi's words when NVML cannot reach the driver or finds no GPU (nvidia-smi(1))
DEAD_DRIVER = re.compile(r"NVIDIA-SMI has failed because it couldn't communicate with the "
                         r"NVIDIA driver.*|No devices were found.*|"
                         r"Unable to determine the device handle for GPU.*")
BEGIN, END = "@@forge-probe-begin", "@@forge-probe-end"
#: a RoCE port's netdev counters the nic probe keeps from ``ethtool -S`` (mlx5 names, the
#: kernel's Documentation/networking/device_drivers/ethernet/mellanox/mlx5/counters.rst),
#: summed over the ports of a RoCE LAG bond
ETHTOOL_COUNTERS = ("rx_discards_phy", "rx_prio[0-7]_discards", "[rt]x_prio[0-7]_pause",
                    "link_down_events_phy", "tx_pause_storm_error_events",
                    "rx_crc_errors_phy", "rx_pcs_symbol_err_phy")
#: a RoCE port's RDMA hardware counters (sysfs hw_counters, mlx5) -> the sweep's records
ROCE_ETH_COUNTERS = {"rx_discards_phy": "roce_rx_discards_phy",
                     "link_down_events_phy": "roce_link_down_events",
                     "tx_pause_storm_error_events": "roce_pause_storm_errors",
                     "rx_crc_errors_phy": "roce_crc_errors",
                     "rx_pcs_symbol_err_phy": "roce_symbol_errors"}
ROCE_HW_COUNTERS = {"out_of_sequence": "roce_out_of_sequence",
                    "packet_seq_err": "roce_packet_seq_err",
                    "out_of_buffer": "roce_out_of_buffer",
                    "np_cnp_sent": "roce_cnp_sent", "rp_cnp_handled": "roce_cnp_handled"}

GPU_FIELDS = (
    "index,uuid,serial,name,pci.bus_id,driver_version,persistence_mode,temperature.gpu,"
    "power.draw,power.limit,clocks.sm,pcie.link.gen.current,pcie.link.gen.max,"
    "pcie.link.width.current,pcie.link.width.max,ecc.errors.uncorrected.volatile.total,"
    "ecc.errors.uncorrected.aggregate.total,ecc.errors.corrected.volatile.total,"
    "retired_pages.pending,remapped_rows.pending,remapped_rows.failure")
GPU_EVENT_FIELDS = ("clocks_event_reasons.hw_thermal_slowdown,clocks_event_reasons.sw_power_cap,"
                    "clocks_event_reasons.hw_slowdown")
# drivers before 530 name the same reasons clocks_throttle_reasons.*
GPU_THROTTLE_FIELDS = GPU_EVENT_FIELDS.replace("clocks_event_reasons", "clocks_throttle_reasons")

NIC_SYSFS = r"""found=0
for p in /sys/class/infiniband/*/ports/*; do
  [ -d "$p" ] || continue; found=1
  d=${p%/ports/*}; d=${d##*/}; n=${p##*/}; r() { cat "$1" 2>/dev/null | tr '\t' ' '; }
  printf 'dev=%s\tport=%s\tstate=%s\tphys=%s\trate=%s\tlayer=%s\tfw=%s\tguid=%s\t' \
    "$d" "$n" "$(r $p/state)" "$(r $p/phys_state)" "$(r $p/rate)" "$(r $p/link_layer)" \
    "$(r /sys/class/infiniband/$d/fw_ver)" "$(r /sys/class/infiniband/$d/node_guid)"
  for c in """ + " ".join(COUNTERS) + r"""; do printf '%s=%s\t' "$c" "$(r $p/counters/$c)"; done
  if [ "$(r $p/link_layer)" = Ethernet ]; then
    for c in """ + " ".join(ROCE_HW_COUNTERS) + r"""; do
      printf 'hw_%s=%s\t' "$c" "$(r $p/hw_counters/$c)"; done
    # the port's netdev (GID 0's), else the function's; a RoCE LAG bond: each of its ports
    nd=$(r $p/gid_attrs/ndevs/0)
    [ -n "$nd" ] || nd=$(ls /sys/class/infiniband/$d/device/net 2>/dev/null | head -n 1)
    nds=$nd; b=/sys/class/net/$nd/bonding/slaves; [ -r "$b" ] && nds=$(cat "$b")
    printf 'netdevs=%s\t' "$(echo $nds | tr ' ' ,)"
    for x in $nds; do ethtool -S "$x" 2>/dev/null; done | awk -F': *' \
      '/^ +(""" + "|".join(ETHTOOL_COUNTERS) + r"""):/ { sub(/^ +/, "", $1); s[$1] += $2; n[$1]++ }
       END { for (k in s) printf "eth_%s=%.0f\teth_%s_n=%d\t", k, s[k], k, n[k] }'
  fi
  echo
done
[ "$found" = 1 ] || ibstat 2>&1 || echo 'no RDMA devices'"""


@dataclass(frozen=True)
class Probe:
    name: str
    description: str
    timeout_s: float
    applies: Callable[[NodeExpectation], bool]
    command: Callable[[NodeExpectation], str]
    parse: Callable[[str, NodeExpectation, float], list[Measurement]]
    #: the tool's exit code carries the verdict (dcgmi diag exits non-zero on a failed test)
    any_rc: bool = False


# --- host: CPUs online and memory visible (lost DIMMs, offlined cores) ------------------
def host_command(exp: NodeExpectation) -> str:
    return ("nproc --all; nproc; awk '/^MemTotal:/ {print $2}' /proc/meminfo; uname -r; "
            "cut -d' ' -f1 /proc/uptime")


def parse_host(text: str, exp: NodeExpectation, now: float) -> list[Measurement]:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if len(lines) < 3 or not all(x.isdigit() for x in lines[:3]):
        raise ValueError(f"unexpected output: {_first_line(text)[:80]}")
    online, mem_kib = int(lines[1]), int(lines[2])
    out = []
    for metric, value, detail in (
            ("cpu_count", float(online), f"{online} of {lines[0]} CPUs online"),
            ("host_memory", round(mem_kib / 2**20, 2), f"MemTotal {mem_kib} kB; kernel "
             f"{lines[3] if len(lines) > 3 else '?'}")):
        lim = exp.limit(metric)
        out.append(record(exp.node, metric, value, check="host",
                          **(lim.fields() if lim else {}),
                          detail=f"{detail}; limit {lim.describe}" if lim else detail))
    if len(lines) > 4 and re.fullmatch(r"[0-9]+(\.[0-9]+)?", lines[4]):
        # counters restart at boot: the increase since a sweep before it is not judged
        out.append(record(exp.node, "host_uptime", float(lines[4]), check="host",
                          detail="seconds since boot (/proc/uptime)"))
    return out


# --- GPU: nvidia-smi query (all counters in one call) -----------------------------------
def gpu_command(exp: NodeExpectation) -> str:
    q = "nvidia-smi --format=csv,nounits --query-gpu="
    return f"{q}{GPU_FIELDS},{GPU_EVENT_FIELDS} || {q}{GPU_FIELDS},{GPU_THROTTLE_FIELDS}"


def parse_gpu(text: str, exp: NodeExpectation, now: float) -> list[Measurement]:
    from provision.parsers import nvidia_smi_query_gpu as q

    # with the fallback, a failed first attempt leaves its error line before the table
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if q.detect(ln)), None)
    if start is None:
        dead = DEAD_DRIVER.search(text)
        if dead and exp.gpu_count:
            # the driver or the GPUs are gone: fatal now, not after --fail-after sweeps
            return [record(exp.node, "gpu_missing", exp.gpu_count, check="gpu", max=0.0,
                           detail=f"0 of {exp.gpu_count} {exp.gpu_model} visible: "
                                  f"{dead[0].strip()[:200]}")]
        raise ValueError(_first_line(text) or "nvidia-smi printed nothing")
    res = q.parse("\n".join(lines[start:]), node=exp.node, source_name="nvidia-smi")
    out = []
    for r in q.measurements(res, check="gpu"):
        out.append(_limit(r, exp))
    seen = len(res.gpus)
    out.append(record(exp.node, "gpu_missing", max(0, exp.gpu_count - seen), check="gpu",
                      max=0.0, detail=f"{seen} of {exp.gpu_count} {exp.gpu_model} visible"))
    return out


def nvml_records(snap: dict[str, Any], exp: NodeExpectation) -> list[Measurement]:
    """An NVML snapshot (:func:`provision.node_programs.gpu.nvml.snapshot`) -> the same records
    as the nvidia-smi path, with the same limits (pure)."""
    from provision.parsers.gpu_info import GpuInfo, gpu_records, remap_banks

    def b(v: Any) -> bool | None:
        return None if v is None else bool(v)

    out: list[Measurement] = []
    gpus = snap.get("gpus") or []
    for g in gpus:
        events = g.get("clocks_events")
        info = GpuInfo(
            index=g.get("index"), name=g.get("name"), uuid=g.get("uuid"),
            serial=g.get("serial"), bus_id=g.get("pci_bus_id"), vbios=g.get("vbios"),
            driver_version=snap.get("driver"), persistence_mode=b(g.get("persistence_mode")),
            ecc_mode=b(g.get("ecc_mode_current")), ecc_mode_pending=b(g.get("ecc_mode_pending")),
            mig_mode=b(g.get("mig_mode_current")), mig_mode_pending=b(g.get("mig_mode_pending")),
            memory_total_mib=g.get("memory_total_mib"),
            pcie_gen=g.get("pcie_gen"), pcie_gen_max=g.get("pcie_gen_max"),
            pcie_width=g.get("pcie_width"), pcie_width_max=g.get("pcie_width_max"),
            pcie_replays=g.get("pcie_replay_counter"),
            ecc_uncorrected_volatile=g.get("ecc_uncorrected_volatile"),
            ecc_uncorrected_aggregate=g.get("ecc_uncorrected_aggregate"),
            ecc_corrected_volatile=g.get("ecc_corrected_volatile"),
            ecc_corrected_aggregate=g.get("ecc_corrected_aggregate"),
            remapped_rows_correctable=g.get("remapped_rows_correctable"),
            remapped_rows_uncorrectable=g.get("remapped_rows_uncorrectable"),
            remapped_rows_pending=b(g.get("remapped_rows_pending")),
            remapped_rows_failed=b(g.get("remapped_rows_failed")),
            remap_banks=remap_banks(list(g.get("remap_histogram") or [])),
            retired_pages_sbe=g.get("retired_pages_sbe"),
            retired_pages_dbe=g.get("retired_pages_dbe"),
            retired_pages_pending=b(g.get("retired_pages_pending")),
            temperature_c=g.get("temperature_c"), power_draw_w=g.get("power_w"),
            power_limit_w=g.get("power_limit_w"),
            power_default_limit_w=g.get("power_default_limit_w"),
            sm_clock_mhz=g.get("sm_clock_mhz"),
            sm_clock_max_mhz=g.get("sm_clock_max_mhz"),
            clocks_events=tuple((r, r in events) for r in (
                "hw_thermal_slowdown", "sw_thermal_slowdown", "sw_power_cap",
                "hw_power_brake_slowdown", "hw_slowdown")) if events is not None else ())
        out.extend(_limit(r, exp) for r in gpu_records(exp.node, info, "gpu"))
        rec = recovery_record(exp.node, g)
        if rec is not None:
            out.append(rec)
    out.append(_limit(record(exp.node, "gpu_count", len(gpus), check="gpu",
                             detail=", ".join(sorted({str(g.get("name")) for g in gpus}))), exp))
    out.append(record(exp.node, "gpu_missing", max(0, exp.gpu_count - len(gpus)), check="gpu",
                      max=0.0, detail=f"{len(gpus)} of {exp.gpu_count} {exp.gpu_model} visible"))
    if exp.driver_branch and snap.get("driver"):
        d = str(snap["driver"])
        out.append(record(exp.node, "driver_version_match",
                          1 if d.split(".")[0] == str(exp.driver_branch) else 0,
                          check="versions", min=1.0,
                          detail=f"driver {d}, spec branch {exp.driver_branch}"))
    return out


def recovery_record(node: str, gpu: dict[str, Any]) -> Measurement | None:
    """NVML's GPU recovery action as a record: anything but "none" takes the GPU out of
    service, whatever the kernel log says (the driver's own verdict wins)."""
    from provision.parsers import xid_catalog as cat

    value = gpu.get("recovery_action")
    action = cat.recovery_action(value)
    if action is None:
        return None
    name = cat.NVML_RECOVERY_NAMES.get(int(value or 0), f"code {value}")
    return record(node, "gpu_recovery_action", 0 if action == "ignore" else 1, check="gpu",
                  gpu=gpu.get("index"), uuid=gpu.get("uuid"), max=0.0,
                  source="nvmlDeviceGetFieldValues(NVML_FI_DEV_GET_GPU_RECOVERY_ACTION)",
                  detail=f"driver asks for: {name} ({action})")


def _limit(r: Measurement, exp: NodeExpectation) -> Measurement:
    """Attach the spec's limit to a record the sweep judges (gpu_count, PCIe links)."""
    if r.metric == "gpu_count":
        return replace(r, min=float(exp.gpu_count),
                       detail=f"{r.detail}; profile {exp.profile} has {exp.gpu_count}")
    if r.metric == "gpu_persistence_mode":
        return replace(r, min=1.0)
    # current PCIe generation drops at idle (power saving): judge the trained maximum
    metric = {"pcie_link_gen_max": "pcie_link_gen", "pcie_link_width": "pcie_link_width"}.get(
        r.metric)
    lim = exp.limit(metric) if metric else None
    if lim is None:
        return r
    return replace(r, **lim.fields(), detail=f"{r.detail + '; ' if r.detail else ''}"
                   f"limit {lim.describe}")


# --- Xid: the kernel log of this boot, judged by NVIDIA's Xid catalog --------------------
def xid_command(exp: NodeExpectation) -> str:
    return ('echo "@@boot $(cat /proc/sys/kernel/random/boot_id 2>/dev/null)"; '
            f'[ -r {XID_ACK_FILE} ] && sed "s/^/@@ack /" {XID_ACK_FILE}; '
            'if [ -n "${FORGE_SWEEP_XID_FILE:-}" ]; then cat "$FORGE_SWEEP_XID_FILE"; '
            "else dmesg --time-format iso 2>/dev/null || "
            "journalctl -k -b --no-pager -o short-iso 2>/dev/null || true; fi")


def _boot_and_ack(text: str) -> tuple[str, str | None, int]:
    """Strip the probe's ``@@boot``/``@@ack`` lines: (log, boot id, acknowledged count)."""
    boot: str | None = None
    ack: tuple[str, int] | None = None
    keep = []
    for ln in text.splitlines():
        if ln.startswith("@@boot"):
            boot = ln[6:].strip() or None
        elif ln.startswith("@@ack"):
            parts = ln[5:].split()
            if len(parts) == 2 and parts[1].isdigit():
                ack = (parts[0], int(parts[1]))
        else:
            keep.append(ln)
    acked = ack[1] if ack and boot and ack[0] == boot else 0
    return "\n".join(keep), boot, acked


def xid_mark(text: str, exp: NodeExpectation) -> tuple[str | None, int]:
    """(boot id, hardware Xid lines of this boot) from the Xid probe's output, ignoring any
    earlier acknowledgement: what a passed re-qualification writes to XID_ACK_FILE."""
    plain = "\n".join(ln for ln in text.splitlines() if not ln.startswith("@@ack"))
    _, boot, _ = _boot_and_ack(plain)
    fatal = next(r for r in parse_xid(plain, exp, 0) if r.metric == "xid_fatal_events")
    return boot, int(fatal.value)


def xid_ack_command(boot: str, count: int) -> str:
    """Write the high-water mark atomically (a half-written mark would hide nothing:
    a malformed line is ignored)."""
    line = shlex.quote(f"{boot} {count}")
    return (f"mkdir -p {shlex.quote(XID_ACK_FILE.rsplit('/', 1)[0])} && "
            f"printf '%s\\n' {line} > {XID_ACK_FILE}.tmp && mv {XID_ACK_FILE}.tmp {XID_ACK_FILE}")


def parse_xid(text: str, exp: NodeExpectation, now: float) -> list[Measurement]:
    """Every Xid of this boot, judged by the catalog; hardware ones beyond the
    high-water mark a passed re-qualification left are fatal. No time window: the
    kernel log of a boot is the window, and a drain it causes is sticky."""
    from provision.parsers import dmesg_xid
    from provision.parsers import xid_catalog as cat

    log, boot, acked = _boot_and_ack(text)
    # detect() also accepts a kernel log with no GPU event in it: that is a clean log
    res = dmesg_xid.parse(log, node=exp.node, source_name="kernel log") \
        if dmesg_xid.detect(log) else None
    if res is None or not res.events:
        n = sum(1 for ln in log.splitlines() if ln.strip())
        return [record(exp.node, "xid_events", 0, check="xid",
                       detail=f"no Xid in {n} kernel log lines"),
                record(exp.node, "xid_fatal_events", 0, check="xid", max=0.0,
                       detail=f"boot {boot or '?'}")]
    uuids = dict(res.uuids)
    groups: dict[tuple[str, str, int], list[dmesg_xid.XidEvent]] = {}
    for e in res.events:
        groups.setdefault((e.kind, e.pci, e.xid), []).append(e)
    out = []
    for (kind, pci, xid), evs in groups.items():
        action = "unknown" if kind == "SXid" else cat.judge(xid, evs[-1].message)
        first = evs[0]
        when = f" first at {first.time}" if first.time else ""
        out.append(record(exp.node, "sxid_events" if kind == "SXid" else "xid_events",
                          len(evs), check="xid", uuid=uuids.get(pci),
                          detail=f"{kind} {xid} on PCI:{pci} ({action}){when}: "
                                 f"{first.message}"[:300]))
    hardware = [e for e in res.events
                if e.kind != "SXid" and cat.is_hardware(cat.judge(e.xid, e.message))]
    new = hardware[acked:]
    codes = sorted({e.xid for e in new})
    first_new = new[0] if new else None
    detail = (f"Xid {','.join(map(str, codes))} on PCI:{first_new.pci} "
              f"({cat.judge(first_new.xid, first_new.message)}): {first_new.message}"
              if first_new else "none")
    if acked:
        detail += f"; {acked} earlier hardware Xid(s) of boot {boot} re-qualified"
    out.append(record(exp.node, "xid_fatal_events", len(new), check="xid", max=0.0,
                      source=cat.SOURCE, detail=detail[:300]))
    return out


# --- NICs: sysfs, else ibstat -----------------------------------------------------------
def nic_command(exp: NodeExpectation) -> str:
    return NIC_SYSFS


def parse_nic(text: str, exp: NodeExpectation, now: float) -> list[Measurement]:
    rows = [dict(kv.split("=", 1) for kv in ln.split("\t") if "=" in kv)
            for ln in text.splitlines() if ln.startswith("dev=")]
    out: list[Measurement] = []
    fws: dict[str, str] = {}
    if rows:
        for r in rows:
            where = f"{r['dev']} port {r['port']}"
            state = r.get("state", "").split(":")[-1].strip()
            phys = r.get("phys", "").split(":")[-1].strip()
            up = state.upper() == "ACTIVE" and phys.lower() == "linkup"
            out.append(record(exp.node, "nic_port_up", 1 if up else 0, check="nic", min=1.0,
                              detail=f"{where} {state}/{phys} {r.get('layer', '')}".strip()))
            rate = re.match(r"\s*([\d.]+)", r.get("rate", ""))
            if up and rate:
                out.append(_rate(exp, float(rate[1]), where))
            guid = r.get("guid", "").strip()
            # the adapter's GUID: a renumbered mlx5_N is not compared with another port
            port = f"{where} guid {guid}" if guid else where
            if r.get("layer", "").strip() == "Ethernet":  # RoCE: the IB PortCounters do not apply
                out += _roce_counters(exp, r, port)
            else:
                out += _counters(exp, r, port)
            if r.get("fw"):
                fws[r["dev"]] = r["fw"].strip()
        ports = len(rows)
    elif "CA '" in text or "ibpanic" in text:
        from provision.parsers import ibstat

        res = ibstat.parse(text, node=exp.node, source_name="ibstat")
        for m in ibstat.measurements(res, check="nic"):
            out.append(_rate(exp, m.value, m.detail or "") if m.metric == "nic_port_rate" else m)
        fws = {ca.name: ca.firmware for ca in res.cas if ca.firmware}
        ports = sum(len(ca.ports) for ca in res.cas)
    else:
        ports = 0
    out.append(record(exp.node, "nic_port_count", ports, check="nic", min=float(exp.rdma_ports),
                      detail=f"{ports} RDMA ports; profile {exp.profile} has {exp.rdma_ports}"))
    if exp.nic_firmware:
        for dev, fw in sorted(fws.items()):
            out.append(record(exp.node, "nic_firmware_match", 1 if fw == exp.nic_firmware else 0,
                              check="versions", min=1.0,
                              detail=f"{dev} firmware {fw}, spec {exp.nic_firmware}"))
    return out


def _counters(exp: NodeExpectation, row: dict[str, str], where: str) -> list[Measurement]:
    """A port's error counters as read, and each one stuck at its maximum (it hides new
    errors until cleared: recorded, not judged, so that an old count drains nothing)."""
    out = []
    for name, metric in METRIC.items():
        text = row.get(name, "").strip()
        if not text.isdigit():
            continue
        out.append(record(exp.node, metric, float(text), check="nic", detail=where))
        if saturated(name, int(text)):
            out.append(record(exp.node, "ib_counter_saturated", 1, check="nic",
                              peer=port_peer(where),
                              detail=f"{where} {name} = {text}, its maximum: errors since are "
                                     f"not counted; clear the counters ({CLEAR})"))
    return out


def _roce_counters(exp: NodeExpectation, row: dict[str, str], where: str) -> list[Measurement]:
    """A RoCE port's counters as read: the RDMA hardware counters (sysfs ``hw_counters``) and
    its netdevs' drop, pause and link counters (``ethtool -S``), those of the spec's lossless
    priority by name; whether PFC is on that priority (mlx5 prints ``rx_prioP_pause`` only
    where it is); and a failure to read the netdev's counters at all."""
    prio = exp.roce_pfc_priority
    names = {f"hw_{c}": m for c, m in ROCE_HW_COUNTERS.items()} | {
        f"eth_{c}": m for c, m in ROCE_ETH_COUNTERS.items()}
    if prio is not None:
        names |= {f"eth_rx_prio{prio}_discards": "roce_lossless_discards",
                  f"eth_rx_prio{prio}_pause": "roce_lossless_pause_rx",
                  f"eth_tx_prio{prio}_pause": "roce_lossless_pause_tx"}
    detail = where if prio is None else f"{where} prio {prio}"
    out = [record(exp.node, metric, float(text), check="nic", detail=detail)
           for key, metric in names.items() if (text := row.get(key, "").strip()).isdigit()]
    netdevs = [n for n in row.get("netdevs", "").strip().split(",") if n]
    if not any(k.startswith("eth_") for k in row):
        out.append(record(exp.node, "tool_ran_ok", 0, check="nic", min=1.0,
                          detail=f"{where}: ethtool -S gave no counters for "
                                 f"{', '.join(netdevs) or 'no netdev found'}: the lossless "
                                 "priority's drops cannot be read (fabric_roce installs ethtool)"))
    elif prio is not None:
        with_pfc = int(row.get(f"eth_rx_prio{prio}_pause_n", "0").strip() or 0)
        out.append(record(
            exp.node, "roce_pfc_enabled", 1 if netdevs and with_pfc >= len(netdevs) else 0,
            check="nic", min=1.0, detail=f"{detail}: PFC on priority {prio} on {with_pfc} of "
            f"{len(netdevs)} netdevs ({', '.join(netdevs)}; mlx5 counts rx_prio{prio}_pause "
            "only where PFC is enabled)"))
    return out


def _rate(exp: NodeExpectation, gbps: float, where: str) -> Measurement:
    lim = exp.limit("nic_port_rate")
    return record(exp.node, "nic_port_rate", gbps, check="nic",
                  **(lim.fields() if lim else {}),
                  detail=f"{where}; limit {lim.describe}" if lim else where)


# --- NVLink: each link's error counters ------------------------------------------------
def nvlink_command(exp: NodeExpectation) -> str:
    return "nvidia-smi nvlink -e"


def parse_nvlink(text: str, exp: NodeExpectation, now: float) -> list[Measurement]:
    """Each link's replay, recovery and CRC error counters as read (counts since the driver
    loaded or ``nvidia-smi nvlink -r``), and each GPU's CRC errors over all its links (CRC flit
    and data errors summed, as DCGM's per-GPU totals): recorded here, judged by their increase
    since the previous sweep (:mod:`provision.sweep.counters`). A GPU that refuses the query
    (MIG) is skipped; output without a counter this reader knows is this probe's failure."""
    from provision.parsers import nvidia_smi_nvlink as nv

    if DEAD_DRIVER.search(text):
        return []  # the gpu probe reports the GPUs missing, fatally; no second finding here
    res = nv.parse(text, node=exp.node, source_name="nvidia-smi nvlink -e")
    out: list[Measurement] = []
    for g in res.gpus:
        crc = 0
        for link in g.links:
            sums: dict[str, int] = {}
            for name, value in link.counters:
                metric = nv.COUNTER_METRIC[name]
                sums[metric] = sums.get(metric, 0) + value
            crc += sums.get("nvlink_crc_errors", 0)
            out += [record(exp.node, metric, value, check="nvlink", gpu=g.index, uuid=g.uuid,
                           model=g.model, detail=f"link {link.link}")
                    for metric, value in sums.items()]
        if any(link.counters for link in g.links):
            out.append(record(exp.node, "nvlink_crc_errors_total", crc, check="nvlink",
                              gpu=g.index, uuid=g.uuid, model=g.model))
    if not out and not any(g.note for g in res.gpus):
        raise ValueError("no NVLink error counter this reader knows in nvidia-smi nvlink -e: "
                         + _first_line(text)[:120])
    return out


# --- versions ---------------------------------------------------------------------------
def versions_command(exp: NodeExpectation) -> str:
    return ("cat /sys/module/nvidia/version 2>/dev/null || "
            "nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -n1")


def parse_versions(text: str, exp: NodeExpectation, now: float) -> list[Measurement]:
    version = _first_line(text)
    if not re.match(r"^\d+\.\d+", version):
        raise ValueError(f"no driver version: {version or 'no output'}")
    ok = exp.driver_branch is None or version.split(".")[0] == str(exp.driver_branch)
    return [record(exp.node, "driver_version_match", 1 if ok else 0, check="versions",
                   min=1.0, detail=f"driver {version}, spec branch {exp.driver_branch}")]


# --- DCGM quick diagnostic (full profile) -----------------------------------------------
def dcgm_command(exp: NodeExpectation) -> str:
    return ('if [ -n "${FORGE_SWEEP_DCGM_FILE:-}" ]; then cat "$FORGE_SWEEP_DCGM_FILE"; '
            "else dcgmi diag -r 1; fi")


def parse_dcgm(text: str, exp: NodeExpectation, now: float) -> list[Measurement]:
    from provision.parsers import dcgmi_diag

    res = dcgmi_diag.parse(text, node=exp.node, source_name="dcgmi diag")
    return [replace(r, check="dcgm") for r in dcgmi_diag.measurements(res, check="dcgm")]


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), "")


def _has_gpu(exp: NodeExpectation) -> bool:
    return exp.gpu_count > 0


PROBES: dict[str, Probe] = {p.name: p for p in (
    Probe("host", "CPUs online and memory visible against the profile", 5.0, lambda e: True,
          host_command, parse_host),
    Probe("gpu", "NVML counters via nvidia-smi: ECC, row remap, retired pages, temperature, "
          "power, clocks events, PCIe link, persistence", 20.0, _has_gpu, gpu_command, parse_gpu),
    Probe("xid", "Xid events of this boot, judged by NVIDIA's Xid catalog", 10.0, lambda e: True,
          xid_command, parse_xid),
    Probe("nic", "RDMA port state, rate and error counters (sysfs, else ibstat)", 10.0,
          lambda e: e.rdma_ports > 0, nic_command, parse_nic),
    # 5 s: the quick profile runs under slurmd's 60 s HealthCheckProgram limit; any exit
    # code: a dead driver's words are the gpu probe's fatal finding, not a second one here
    Probe("nvlink", "NVLink replay, recovery and CRC error counters (nvidia-smi nvlink -e)",
          5.0, lambda e: e.gpu_count > 0 and e.nvlink_links > 0, nvlink_command, parse_nvlink,
          any_rc=True),
    Probe("versions", "GPU driver branch against the spec", 10.0, _has_gpu, versions_command,
          parse_versions),
    Probe("dcgm", "dcgmi diag -r 1 (deployment checks, seconds, non-disruptive)", 120.0,
          lambda e: e.gpu_count > 0 and e.dcgm, dcgm_command, parse_dcgm, any_rc=True),
)}

PROFILES: dict[str, tuple[str, ...]] = {
    "quick": ("host", "gpu", "nic", "nvlink", "xid"),
    "full": ("host", "gpu", "nic", "nvlink", "versions", "xid", "dcgm"),
}


def selected(profile: str, exp: NodeExpectation) -> list[Probe]:
    return [PROBES[n] for n in PROFILES[profile] if PROBES[n].applies(exp)]


# --- one script for all of a node's probes ----------------------------------------------
def script(probes: list[Probe], exp: NodeExpectation, *, timeout_scale: float = 1.0) -> str:
    """A POSIX sh script running each probe under ``timeout`` between marker lines."""
    parts = [f"set -a; [ -r {DEFAULTS_FILE} ] && . {DEFAULTS_FILE}; set +a",
             "PATH=$PATH:/usr/sbin:/sbin:/usr/bin"]
    for p in probes:
        t = max(1, round(p.timeout_s * timeout_scale))
        parts.append(f"echo '{BEGIN} {p.name}'")
        parts.append(f"timeout -k 2 {t} sh -c {shlex.quote(p.command(exp))} 2>&1 </dev/null")
        parts.append(f"echo \"{END} {p.name} $?\"")
    return "\n".join(parts) + "\n"


@dataclass(frozen=True)
class ProbeOutput:
    name: str
    text: str
    rc: int | None        # None: the probe never finished (the node went away mid-run)


def split_sections(text: str) -> dict[str, ProbeOutput]:
    """Marker-delimited output -> per-probe output; an unterminated section has rc None."""
    out: dict[str, ProbeOutput] = {}
    current: str | None = None
    buf: list[str] = []
    for line in text.splitlines():
        # a probe whose output lacks a final newline (`cat` of a file without one)
        # leaves its end marker on the same line as its last output line
        if current is not None and (cut := line.find(END + " ")) > 0:
            buf.append(line[:cut])
            line = line[cut:]
        if line.startswith(BEGIN + " "):
            current, buf = line.split(" ", 1)[1].strip(), []
        elif line.startswith(END + " ") and current is not None:
            fields = line.split()
            rc = int(fields[2]) if len(fields) > 2 and fields[2].lstrip("-").isdigit() else None
            out[current] = ProbeOutput(current, "\n".join(buf), rc)
            current = None
        elif current is not None:
            buf.append(line)
    if current is not None:
        out[current] = ProbeOutput(current, "\n".join(buf), None)
    return out


def evaluate(probe: Probe, output: ProbeOutput | None, exp: NodeExpectation,
             now: float | None = None) -> list[Measurement]:
    """Records of one probe, always ending with its ``probe_ok`` record."""
    now = time.time() if now is None else now
    t = probe.timeout_s

    def status(ok: bool, detail: str) -> Measurement:
        return record(exp.node, "probe_ok", 1 if ok else 0, check=probe.name, min=1.0,
                      detail=f"{probe.name}: {detail}"[:300])

    if output is None or output.rc is None:
        return [status(False, "no result (connection lost or node stopped mid-run)")]
    if output.rc == 124 or output.rc == 137:
        return [status(False, f"timed out after {t:g} s")]
    if output.rc == 127:
        return [status(False, f"tool not installed: {_first_line(output.text)}")]
    if output.rc != 0 and not probe.any_rc:
        return [status(False, f"exit {output.rc}: {_first_line(output.text)[:200]}")]
    try:
        records = probe.parse(output.text, exp, now)
    except Exception as exc:  # any parser failure is this probe's failure, never the sweep's
        why = exc.message if hasattr(exc, "message") else str(exc)
        return [status(False, f"exit {output.rc}: {why}")]
    return [*records, status(True, f"ok in {t:g} s budget")]

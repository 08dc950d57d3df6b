"""NVML readings through pynvml (nvidia-ml-py): a snapshot of every GPU, and a sampler.

Used by the HBM and SDC workloads (before/after counters, power and clocks
while they run) and by sweeps. A field the GPU does not support is ``None``.
``python -m provision.node_programs.gpu.nvml`` prints a snapshot as JSON.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

SCHEMA_VERSION = 1

#: nvmlClocksEventReason* bits (nvml.h); "throttle reasons" in older drivers
CLOCKS_EVENT_BITS: tuple[tuple[int, str], ...] = (
    (0x1, "gpu_idle"), (0x2, "applications_clocks_setting"), (0x4, "sw_power_cap"),
    (0x8, "hw_slowdown"), (0x10, "sync_boost"), (0x20, "sw_thermal_slowdown"),
    (0x40, "hw_thermal_slowdown"), (0x80, "hw_power_brake_slowdown"),
    (0x100, "display_clock_setting"),
)
THERMAL = ("sw_thermal_slowdown", "hw_thermal_slowdown")
POWER = ("sw_power_cap", "hw_power_brake_slowdown")


def decode_reasons(mask: int) -> list[str]:
    """Clocks-event bitmask -> reason names (pure)."""
    return [name for bit, name in CLOCKS_EVENT_BITS if mask & bit]


def nvml_index(cuda_index: int) -> int:
    """The NVML index of CUDA device ``cuda_index``: CUDA enumerates only the GPUs of
    ``CUDA_VISIBLE_DEVICES`` (in PCI order with ``CUDA_DEVICE_ORDER=PCI_BUS_ID``), NVML all
    of them. UUID lists are not mapped (index returned as is)."""
    import os

    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")
               if v.strip()]
    if cuda_index < len(visible) and visible[cuda_index].isdigit():
        return int(visible[cuda_index])
    return cuda_index


class NvmlUnavailable(RuntimeError):
    """pynvml is not installed or NVML cannot initialise (no driver, no GPU)."""


def _nvml() -> Any:
    try:
        import pynvml
    except ImportError as exc:
        raise NvmlUnavailable("pynvml (nvidia-ml-py) is not installed") from exc
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        raise NvmlUnavailable(f"NVML init failed: {exc}") from exc
    return pynvml


def _try(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        value = fn(*args)
    except Exception:  # NVMLError_NotSupported and friends: the field is unknown
        return None
    return value.decode() if isinstance(value, bytes) else value


def _field(nv: Any, h: Any, name: str) -> int | None:
    """One NVML field value (nvmlDeviceGetFieldValues) as an int; None where the driver
    or nvidia-ml-py does not know the field."""
    fid = getattr(nv, name, None)
    if fid is None:
        return None
    values = _try(nv.nvmlDeviceGetFieldValues, h, [fid])
    if not values or getattr(values[0], "nvmlReturn", 1) != 0:
        return None
    v = values[0].value
    return int(getattr(v, "uiVal", 0) or getattr(v, "ullVal", 0) or 0)


def _gpu(nv: Any, index: int) -> dict[str, Any]:
    h = nv.nvmlDeviceGetHandleByIndex(index)
    mem = _try(nv.nvmlDeviceGetMemoryInfo, h)
    ecc = _try(nv.nvmlDeviceGetEccMode, h)
    err = nv.NVML_MEMORY_ERROR_TYPE_UNCORRECTED
    cor = nv.NVML_MEMORY_ERROR_TYPE_CORRECTED
    vol, agg = nv.NVML_VOLATILE_ECC, nv.NVML_AGGREGATE_ECC
    remap = _try(nv.nvmlDeviceGetRemappedRows, h)
    pci = _try(nv.nvmlDeviceGetPciInfo, h)
    retired_sbe = _try(nv.nvmlDeviceGetRetiredPages, h,
                       nv.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS)
    retired_dbe = _try(nv.nvmlDeviceGetRetiredPages, h,
                       nv.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR)
    power = _try(nv.nvmlDeviceGetPowerUsage, h)
    limit = _try(nv.nvmlDeviceGetEnforcedPowerLimit, h)
    default_limit = _try(nv.nvmlDeviceGetPowerManagementDefaultLimit, h)
    mig = _try(nv.nvmlDeviceGetMigMode, h)  # [current, pending]; not supported: no MIG
    banks = _try(nv.nvmlDeviceGetRowRemapperHistogram, h)  # Ampere and newer
    reasons = _try(nv.nvmlDeviceGetCurrentClocksEventReasons, h)
    if reasons is None:
        reasons = _try(nv.nvmlDeviceGetCurrentClocksThrottleReasons, h)
    bus = pci.busId if pci is not None else None
    return {
        "index": index, "name": _try(nv.nvmlDeviceGetName, h),
        "uuid": _try(nv.nvmlDeviceGetUUID, h), "serial": _try(nv.nvmlDeviceGetSerial, h),
        "pci_bus_id": bus.decode() if isinstance(bus, bytes) else bus,
        "vbios": _try(nv.nvmlDeviceGetVbiosVersion, h),
        "memory_total_mib": mem.total / 2**20 if mem is not None else None,
        "persistence_mode": _try(nv.nvmlDeviceGetPersistenceMode, h),
        "ecc_mode_current": ecc[0] if ecc else None,
        "ecc_mode_pending": ecc[1] if ecc else None,
        "ecc_uncorrected_volatile": _try(nv.nvmlDeviceGetTotalEccErrors, h, err, vol),
        "ecc_uncorrected_aggregate": _try(nv.nvmlDeviceGetTotalEccErrors, h, err, agg),
        "ecc_corrected_volatile": _try(nv.nvmlDeviceGetTotalEccErrors, h, cor, vol),
        "ecc_corrected_aggregate": _try(nv.nvmlDeviceGetTotalEccErrors, h, cor, agg),
        "retired_pages_sbe": len(retired_sbe) if retired_sbe is not None else None,
        "retired_pages_dbe": len(retired_dbe) if retired_dbe is not None else None,
        "retired_pages_pending": _try(nv.nvmlDeviceGetRetiredPagesPendingStatus, h),
        "remapped_rows_correctable": remap[0] if remap else None,
        "remapped_rows_uncorrectable": remap[1] if remap else None,
        "remapped_rows_pending": remap[2] if remap else None,
        "remapped_rows_failed": remap[3] if remap else None,
        # banks by spare rows left: max, high, partial, low, none
        "remap_histogram": [banks.max, banks.high, banks.partial, banks.low, banks.none]
        if banks is not None else None,
        "pcie_gen": _try(nv.nvmlDeviceGetCurrPcieLinkGeneration, h),
        "pcie_gen_max": _try(nv.nvmlDeviceGetMaxPcieLinkGeneration, h),
        "pcie_width": _try(nv.nvmlDeviceGetCurrPcieLinkWidth, h),
        "pcie_width_max": _try(nv.nvmlDeviceGetMaxPcieLinkWidth, h),
        "pcie_replay_counter": _try(nv.nvmlDeviceGetPcieReplayCounter, h),
        "temperature_c": _try(nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU),
        "power_w": power / 1000 if power is not None else None,
        "power_limit_w": limit / 1000 if limit is not None else None,
        "power_default_limit_w": default_limit / 1000 if default_limit is not None else None,
        "mig_mode_current": mig[0] if mig else None,
        "mig_mode_pending": mig[1] if mig else None,
        "sm_clock_mhz": _try(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_SM),
        "sm_clock_max_mhz": _try(nv.nvmlDeviceGetMaxClockInfo, h, nv.NVML_CLOCK_SM),
        "mem_clock_mhz": _try(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_MEM),
        "clocks_event_mask": reasons,
        "clocks_events": decode_reasons(reasons) if reasons is not None else None,
        # nvmlGpuRecoveryAction_t (driver 550+): 0 none, 1 GPU reset, 2 node reboot,
        # 3 drain P2P, 4 drain P2P and reset; None where the driver does not report it
        "recovery_action": _field(nv, h, "NVML_FI_DEV_GET_GPU_RECOVERY_ACTION"),
    }


def snapshot() -> dict[str, Any]:
    """Every GPU's static facts, counters and current readings (raises NvmlUnavailable)."""
    nv = _nvml()
    try:
        count = nv.nvmlDeviceGetCount()
        return {"schema_version": SCHEMA_VERSION,
                "driver": _try(nv.nvmlSystemGetDriverVersion),
                "nvml": _try(nv.nvmlSystemGetNVMLVersion),
                "cuda_driver": _try(nv.nvmlSystemGetCudaDriverVersion),
                "gpus": [_gpu(nv, i) for i in range(count)]}
    finally:
        nv.nvmlShutdown()


def summarize(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-GPU statistics of sampler readings (pure): max/mean power, max temperature,
    mean/min SM clock, and the share of samples with each kind of clocks event."""
    if not samples:
        return {"samples": 0}

    def vals(key: str) -> list[float]:
        return [float(s[key]) for s in samples if s.get(key) is not None]

    def share(names: tuple[str, ...]) -> float:
        hits = [1 for s in samples if set(s.get("clocks_events") or []) & set(names)]
        return round(len(hits) / len(samples), 4)

    power, temp, sm = vals("power_w"), vals("temperature_c"), vals("sm_clock_mhz")
    limit = vals("power_limit_w")
    return {
        "samples": len(samples),
        "power_max_w": max(power) if power else None,
        "power_mean_w": round(sum(power) / len(power), 2) if power else None,
        "power_limit_w": max(limit) if limit else None,
        "temperature_max_c": max(temp) if temp else None,
        "sm_clock_mean_mhz": round(sum(sm) / len(sm), 1) if sm else None,
        "sm_clock_min_mhz": min(sm) if sm else None,
        "clocks_event_thermal": share(THERMAL),
        "clocks_event_power": share(POWER),
        "clocks_event_hw_slowdown": share(("hw_slowdown",)),
        "clocks_event_hw_power_brake": share(("hw_power_brake_slowdown",)),
        "clocks_event_hw_thermal": share(("hw_thermal_slowdown",)),
    }


class Sampler:
    """Samples power, temperature, clocks and clocks-event reasons of every GPU periodically."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.samples: dict[int, list[dict[str, Any]]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._nv: Any = None

    def _read(self) -> None:
        nv = self._nv
        for i in range(nv.nvmlDeviceGetCount()):
            h = nv.nvmlDeviceGetHandleByIndex(i)
            power = _try(nv.nvmlDeviceGetPowerUsage, h)
            limit = _try(nv.nvmlDeviceGetEnforcedPowerLimit, h)
            mask = _try(nv.nvmlDeviceGetCurrentClocksEventReasons, h)
            if mask is None:
                mask = _try(nv.nvmlDeviceGetCurrentClocksThrottleReasons, h)
            self.samples.setdefault(i, []).append({
                "t": time.monotonic(),
                "power_w": power / 1000 if power is not None else None,
                "power_limit_w": limit / 1000 if limit is not None else None,
                "temperature_c": _try(nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU),
                "sm_clock_mhz": _try(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_SM),
                "clocks_events": decode_reasons(mask) if mask is not None else None,
            })

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._read()

    def __enter__(self) -> Sampler:
        self._nv = _nvml()
        self._read()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._nv.nvmlShutdown()

    def summary(self) -> dict[int, dict[str, Any]]:
        return {i: summarize(s) for i, s in self.samples.items()}


def main() -> int:
    try:
        json.dump(snapshot(), sys.stdout, sort_keys=True)
    except NvmlUnavailable as exc:
        json.dump({"schema_version": SCHEMA_VERSION, "error": str(exc), "gpus": []}, sys.stdout)
        sys.stdout.write("\n")
        return 3
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

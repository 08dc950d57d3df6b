"""One GPU's state as ``nvidia-smi -q`` and ``--query-gpu`` CSV both report it.

Both parsers fill the same :class:`GpuInfo`, so the conformance check and
``forge ingest`` judge the same fields whichever form was collected, and one
function turns it into records.
"""

from __future__ import annotations

from dataclasses import dataclass

from provision.measurement import Measurement
from provision.parsers.base import record


@dataclass(frozen=True)
class GpuInfo:
    index: int | None  # None for a fragment that does not say which GPU
    name: str | None = None
    uuid: str | None = None
    serial: str | None = None
    bus_id: str | None = None
    vbios: str | None = None
    driver_version: str | None = None
    persistence_mode: bool | None = None
    ecc_mode: bool | None = None
    #: the ECC and MIG modes the GPU takes at its next reboot or reset (nvidia-smi
    #: ``ecc.mode.pending``, ``mig.mode.pending``): a change waiting for one
    ecc_mode_pending: bool | None = None
    mig_mode: bool | None = None
    mig_mode_pending: bool | None = None
    #: the infoROM image version (``inforom.img``): like the VBIOS, it names what is flashed
    inforom_image: str | None = None
    memory_total_mib: float | None = None
    pcie_gen: float | None = None
    pcie_gen_max: float | None = None
    pcie_width: float | None = None
    pcie_width_max: float | None = None
    pcie_replays: float | None = None
    ecc_uncorrected_volatile: float | None = None
    ecc_uncorrected_aggregate: float | None = None
    ecc_corrected_volatile: float | None = None
    ecc_corrected_aggregate: float | None = None
    remapped_rows_correctable: float | None = None
    remapped_rows_uncorrectable: float | None = None
    remapped_rows_pending: bool | None = None
    remapped_rows_failed: bool | None = None
    #: the row remapper's bank histogram, (max, high, partial, low, none) banks: "none means
    #: that there are no reserved rows available" (nvmlRowRemapperHistogramValues_t)
    remap_banks: tuple[float, float, float, float, float] | None = None
    retired_pages_sbe: float | None = None
    retired_pages_dbe: float | None = None
    retired_pages_pending: bool | None = None
    temperature_c: float | None = None
    memory_temperature_c: float | None = None
    power_draw_w: float | None = None
    power_limit_w: float | None = None
    #: the limit software asked for (``power.limit``, -q "Requested Power Limit"); the
    #: enforced one, the minimum of every limiter, is ``power_limit_w``
    power_requested_limit_w: float | None = None
    #: the power limit the driver restores on unload (``power.default_limit``)
    power_default_limit_w: float | None = None
    #: the driver's recovery action in nvidia-smi's words (``gpu_recovery_action``: "None")
    recovery_action: str | None = None
    sm_clock_mhz: float | None = None
    sm_clock_max_mhz: float | None = None
    #: clocks-event (throttle) reasons: ("sw_power_cap", True), ...
    clocks_events: tuple[tuple[str, bool], ...] = ()

    def event(self, reason: str) -> bool | None:
        return dict(self.clocks_events).get(reason)


def flag(text: str | None) -> bool | None:
    """Enabled/Yes/Active -> True, Disabled/No/Not Active -> False, N/A -> None."""
    t = (text or "").strip().strip("[]").lower()
    if t in ("enabled", "yes", "active", "on", "true"):
        return True
    if t in ("disabled", "no", "not active", "off", "false"):
        return False
    return None


def known(text: str | None) -> str | None:
    """A text value, or None where nvidia-smi printed none (``N/A``, ``[N/A]``, ``[...]``,
    ``[Requested functionality has been deprecated]``)."""
    t = reported(text)
    return t if t is not None and not t.startswith("[") else None


def reported(text: str | None) -> str | None:
    """A value, or None where the field is not supported (``N/A``, ``[N/A]``); nvidia-smi's
    words for a read that failed (``[Unknown Error]``) are kept, so a caller can say so."""
    t = (text or "").strip()
    return t if t and t.strip("[]") != "N/A" else None


def reason_key(label: str) -> str:
    """``'HW Power Brake Slowdown'`` or ``hw_power_brake_slowdown`` -> the latter."""
    key = label.strip().lower().replace(" ", "_").replace(".", "_")
    return {"idle": "gpu_idle"}.get(key, key)


REMAP_LEVELS = ("max", "high", "partial", "low", "none")


def remap_banks(values: list[float | None]) -> tuple[float, float, float, float, float] | None:
    """The five histogram counts in :data:`REMAP_LEVELS` order, or None unless all are known."""
    if len(values) != len(REMAP_LEVELS) or any(v is None for v in values):
        return None
    a, b, c, d, e = (float(v) for v in values if v is not None)
    return (a, b, c, d, e)


def remap_detail(banks: tuple[float, ...]) -> str:
    return "banks by spare rows left: " + ", ".join(
        f"{v:g} {k}" for k, v in zip(REMAP_LEVELS, banks, strict=True))


def recovery_needed(action: str) -> bool:
    """Whether nvidia-smi's ``gpu_recovery_action`` asks for anything ("None" is nothing)."""
    return action.strip().lower() != "none"


_THERMAL = ("hw_thermal_slowdown", "sw_thermal_slowdown")
_POWER = ("sw_power_cap", "hw_power_brake_slowdown")


def gpu_records(node: str, g: GpuInfo, check: str) -> list[Measurement]:
    kw = {"gpu": g.index, "model": g.name, "uuid": g.uuid, "serial": g.serial, "check": check,
          "bus_id": g.bus_id, "vbios": g.vbios}
    out: list[Measurement] = []

    def add(metric: str, value: float | bool | None, **extra: object) -> None:
        if value is not None:
            out.append(record(node, metric, float(value), **kw, **extra))  # type: ignore[arg-type]

    add("gpu_memory_total", g.memory_total_mib)
    add("gpu_persistence_mode", g.persistence_mode)
    add("gpu_ecc_mode", g.ecc_mode)
    add("gpu_ecc_mode_pending", g.ecc_mode_pending)
    add("gpu_mig_mode", g.mig_mode)
    add("gpu_mig_mode_pending", g.mig_mode_pending)
    add("pcie_link_gen", g.pcie_gen, detail=f"max {g.pcie_gen_max}" if g.pcie_gen_max else None)
    add("pcie_link_gen_max", g.pcie_gen_max)
    add("pcie_link_width", g.pcie_width,
        detail=f"max {g.pcie_width_max}" if g.pcie_width_max else None)
    add("pcie_link_width_max", g.pcie_width_max)
    add("pcie_replay_count", g.pcie_replays)
    add("ecc_uncorrected_volatile", g.ecc_uncorrected_volatile, max=0.0)
    add("ecc_uncorrected_aggregate", g.ecc_uncorrected_aggregate)
    add("ecc_corrected_volatile", g.ecc_corrected_volatile)
    add("remapped_rows_correctable", g.remapped_rows_correctable)
    add("remapped_rows_uncorrectable", g.remapped_rows_uncorrectable)
    add("remapped_rows_pending", g.remapped_rows_pending, max=0.0)
    add("remapped_rows_failed", g.remapped_rows_failed, max=0.0)
    if g.remap_banks is not None:
        add("gpu_remap_banks_low", g.remap_banks[3], detail=remap_detail(g.remap_banks))
        add("gpu_remap_banks_none", g.remap_banks[4], detail=remap_detail(g.remap_banks))
    add("retired_pages_pending", g.retired_pages_pending, max=0.0)
    add("retired_pages", g.retired_pages_dbe, detail="double bit ECC")
    add("retired_pages", g.retired_pages_sbe, detail="single bit ECC")
    add("gpu_temperature", g.temperature_c)
    add("gpu_memory_temperature", g.memory_temperature_c)
    add("gpu_power", g.power_draw_w)
    add("gpu_power_limit", g.power_limit_w)
    add("gpu_power_default_limit", g.power_default_limit_w)
    if g.recovery_action is not None and not g.recovery_action.startswith("["):
        # the driver's own verdict: "None" or what to do (a bracketed value: the read failed)
        add("gpu_recovery_action", recovery_needed(g.recovery_action), max=0.0,
            detail=f"driver asks for: {g.recovery_action}")
    if g.power_draw_w is not None and g.power_limit_w:
        add("gpu_power_fraction", round(g.power_draw_w / g.power_limit_w, 4),
            detail=f"{g.power_draw_w} W of {g.power_limit_w} W limit")
    add("gpu_sm_clock", g.sm_clock_mhz)
    add("gpu_sm_clock_max", g.sm_clock_max_mhz)
    events = dict(g.clocks_events)
    for metric, reasons in (("clocks_event_thermal", _THERMAL), ("clocks_event_power", _POWER),
                            ("clocks_event_hw_slowdown", ("hw_slowdown",))):
        seen = [events[r] for r in reasons if events.get(r) is not None]
        if seen:
            active = [r for r in reasons if events.get(r)]
            add(metric, 1.0 if any(seen) else 0.0,
                detail="active: " + ",".join(active) if active else "none active")
    return out

"""GPU state a previous job, tenant or operator can leave behind, and firmware sameness.

Conformance asks ``nvidia-smi --query-gpu`` for these apart from its inventory query,
so that a driver lacking one of the fields loses these readings only: every field is
listed by ``nvidia-smi --help-query-gpu`` of drivers 580.173.02 and 590.48.01
(tests/checks/fixtures/help-query-gpu, with their sources).

What each judges, in nvidia-smi's own words (``--help-query-gpu``):

- ``ecc.mode.pending``, "the ECC mode that the GPU will operate under after the next
  reboot": ECC switched off with ``nvidia-smi -e 0`` shows here before it takes effect.
- ``mig.mode.current`` / ``mig.mode.pending`` ("after reset"): a GPU left in MIG mode
  offers no whole GPU to NCCL or to Slurm's GRES; option ``mig``.
- ``enforced.power.limit``, "the minimum of various power limiters", against
  ``power.default_limit``: "Power Limit will be set back to Default Power Limit after
  driver unload", so a cap set with ``nvidia-smi -pl`` (``power.limit``, "the software
  power limit") stays on a persistence-mode node until then, and a cap from another
  limiter shows as well; option ``power_limit`` (``default``, ``record``, or the site's
  cap in watts).
- ``gpu_recovery_action``, "the GPU Recovery action recommended to recover from a bad
  state": anything but ``None`` is the driver's own verdict; "an error message indicates
  that retrieving the field failed", which fails the reading.
- ``remapped_rows.histogram.*``, "the histogram of bank remap availability": a delivered
  GPU with a bank that has no spare row left (``none``; NVML: "no reserved rows
  available") cannot remap the next uncorrectable error there.
- ``vbios_version`` and ``inforom.img`` ("image version just like VBIOS version uniquely
  describes the exact version of the infoROM flashed on the board"): the GPUs of one
  node are one model and should be flashed alike; a board that differs was usually
  swapped without a reflash. The VBIOS is also compared with
  ``bmc.firmware_baseline.gpu_vbios`` where the spec states one (``forge bmc firmware``
  reads the same version over Redfish).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from provision.checks.collected import Collected, command
from provision.checks.reference import exact
from provision.errors import InputError
from provision.expectations import NodePlan
from provision.measurement import Measurement
from provision.parsers import get as parser
from provision.parsers.gpu_info import GpuInfo, recovery_needed, remap_detail

FIELDS = ("index,pci.bus_id,vbios_version,inforom.img,ecc.mode.current,ecc.mode.pending,"
          "mig.mode.current,mig.mode.pending,power.limit,enforced.power.limit,"
          "power.default_limit,gpu_recovery_action,remapped_rows.histogram.max,"
          "remapped_rows.histogram.high,remapped_rows.histogram.partial,"
          "remapped_rows.histogram.low,remapped_rows.histogram.none")
COMMAND = "gpu-state"
_QUERY = f"nvidia-smi --query-gpu={FIELDS}"


def request() -> dict[str, Any]:
    """The collector command that reads the state."""
    return command(["nvidia-smi", f"--query-gpu={FIELDS}", "--format=csv"])


def expectations(site: Any, mig: str, power_limit: str) -> dict[str, Any]:
    """What the node-side data is judged against, echoed back with the collected data."""
    return {"mig": mig, "power_limit": power_limit,
            "gpu_vbios": dict(site.bmc.firmware_baseline).get("gpu_vbios")}


def records(data: Collected, plan: NodePlan, check: str) -> list[Measurement]:
    """The state records of every GPU, and the node's firmware sameness."""
    if data.missing(COMMAND) or COMMAND not in data.commands:
        return []  # nvidia-smi missing: the inventory records say so
    gpus = _read(data, plan)
    if isinstance(gpus, str):
        return [exact(plan, "tool_ran_ok", 0, 1, check=check, source=_QUERY,
                      detail=f"GPU state not read: {gpus}")]
    expect = data.request.get("expect", {})
    out: list[Measurement] = []
    for g in gpus:
        out += _one(plan, g, check, expect)
    out += uniform(plan, gpus, check, "gpu_vbios_uniform", "VBIOS", lambda g: g.vbios)
    out += uniform(plan, gpus, check, "gpu_inforom_uniform", "infoROM image",
                    lambda g: g.inforom_image)
    return out


def _read(data: Collected, plan: NodePlan) -> tuple[GpuInfo, ...] | str:
    """The GPUs' state, or nvidia-smi's words for why there is none."""
    result = data.commands[COMMAND]
    text = data.output(COMMAND) or ""
    said = " ".join((text.strip() or str(result.get("stderr") or "").strip()).split())
    if result.get("timed_out"):
        return "nvidia-smi timed out"
    if result.get("returncode") or not text.strip():
        return f"nvidia-smi exit {result.get('returncode')}: {said[:200] or 'no output'}"
    try:
        gpus: tuple[GpuInfo, ...] = parser("nvidia-smi-query-gpu").parse(
            text, node=plan.node, source_name=f"{plan.node}:{COMMAND}").gpus
    except InputError as exc:
        return str(exc)[:200]
    return gpus


def _one(plan: NodePlan, g: GpuInfo, check: str, expect: dict[str, Any]) -> list[Measurement]:
    kw: dict[str, Any] = {"gpu": g.index, "check": check, "bus_id": g.bus_id, "vbios": g.vbios}
    out: list[Measurement] = []
    if g.ecc_mode_pending is not None:
        out.append(exact(plan, "gpu_ecc_mode_pending", int(g.ecc_mode_pending), 1,
                         source=f"profile {plan.profile}: ECC on; nvidia-smi ecc.mode.pending "
                                "is the mode after the next reboot",
                         detail=f"ECC {_on(g.ecc_mode)} now, {_on(g.ecc_mode_pending)} after "
                                "the next reboot", **kw))
    mig = str(expect.get("mig") or "disabled")
    for metric, value, when in (("gpu_mig_mode", g.mig_mode, "now"),
                                ("gpu_mig_mode_pending", g.mig_mode_pending,
                                 "after the next GPU reset")):
        if value is None:
            continue  # [N/A]: a GPU without MIG (L40S)
        detail = f"MIG {_on(value)} {when}"
        if mig == "record":
            out.append(Measurement(node=plan.node, metric=metric, value=float(value),
                                   profile=plan.profile, detail=detail, **kw))
        else:
            out.append(exact(plan, metric, int(value), int(mig == "enabled"), detail=detail,
                             source=f"conformance option mig={mig}", **kw))
    out += _power(plan, g, str(expect.get("power_limit") or "default"), kw)
    if g.recovery_action is not None and g.recovery_action.startswith("["):
        out.append(exact(plan, "tool_ran_ok", 0, 1, source=_QUERY,
                         detail=f"gpu_recovery_action not read: {g.recovery_action}", **kw))
    elif g.recovery_action is not None:
        out.append(exact(plan, "gpu_recovery_action", int(recovery_needed(g.recovery_action)),
                         0, source="nvidia-smi gpu_recovery_action: the driver's own verdict",
                         detail=f"driver asks for: {g.recovery_action}", **kw))
    if g.remap_banks is not None:
        out.append(exact(plan, "gpu_remap_banks_none", g.remap_banks[4], 0,
                         source="nvmlRowRemapperHistogramValues_t: none, banks with no reserved "
                                "row left; the next uncorrectable error there cannot be remapped",
                         detail=remap_detail(g.remap_banks), **kw))
    baseline = expect.get("gpu_vbios")
    if baseline and g.vbios:
        out.append(exact(plan, "gpu_vbios_match", int(g.vbios == baseline), 1,
                         source=f"spec bmc.firmware_baseline.gpu_vbios {baseline}",
                         detail=f"VBIOS {g.vbios}", **kw))
    return out


def _power(plan: NodePlan, g: GpuInfo, option: str, kw: dict[str, Any]) -> list[Measurement]:
    """The enforced power limit (the minimum of every limiter, so a cap from another
    limiter shows too) against the driver's default, or the site's cap in watts."""
    enforced, default = g.power_limit_w, g.power_default_limit_w
    if enforced is None:
        return []
    requested = (f" (requested {g.power_requested_limit_w:g} W)"
                 if g.power_requested_limit_w is not None else "")
    detail = f"enforced {enforced:g} W{requested}, the driver's default " + (
        f"{default:g} W" if default is not None else "unknown")
    if option == "record":
        return [Measurement(node=plan.node, metric="gpu_power_limit", value=enforced, unit="W",
                            profile=plan.profile, detail=detail, **kw)]
    if option == "default":
        if default is None:  # nothing to hold it to: shown, not judged
            return [Measurement(node=plan.node, metric="gpu_power_limit", value=enforced,
                                unit="W", profile=plan.profile, detail=detail, **kw)]
        return [exact(plan, "gpu_power_limit", enforced, default, detail=detail,
                      source="nvidia-smi power.default_limit: a cap set with nvidia-smi -pl "
                             "stays until the driver reloads", **kw)]
    return [exact(plan, "gpu_power_limit", enforced, float(option), detail=detail,
                  source=f"conformance option power_limit={option} (the site's cap)", **kw)]


def uniform(plan: NodePlan, gpus: Sequence[GpuInfo], check: str, metric: str, what: str,
             version: Callable[[GpuInfo], str | None]) -> list[Measurement]:
    """One node-level record: do the node's GPUs all show the same ``what``?"""
    holders: dict[str, list[str]] = {}
    for k, g in enumerate(gpus):
        v = version(g)
        if v:
            holders.setdefault(v, []).append(str(g.index if g.index is not None else k))
    if sum(len(h) for h in holders.values()) < 2:
        return []  # one GPU, or none reported: nothing to compare
    detail = "; ".join(f"{v} on GPU {','.join(h)}" for v, h in
                       sorted(holders.items(), key=lambda item: -len(item[1])))
    return [exact(plan, metric, int(len(holders) == 1), 1, check=check,
                  source=f"profile {plan.profile}: {plan.gpu_count}x {plan.gpu_model}, one "
                         f"model flashed alike (a board on another {what} was swapped "
                         "without a reflash)", detail=detail)]


def _on(flag: bool | None) -> str:
    return "unknown" if flag is None else "enabled" if flag else "disabled"

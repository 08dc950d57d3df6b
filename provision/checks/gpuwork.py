"""Catalog 5 and 6: HBM bandwidth and the SDC burn-in, run on the nodes from
provision.node_programs.gpu."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from provision.checks.base import Check, Context, Needs, Raw
from provision.checks.options import option
from provision.checks.reference import exact, judged
from provision.errors import InputError
from provision.expectations import NodePlan, SitePlan
from provision.measurement import Measurement
from provision.remote.payload import python_program

NVML = "provision.node_programs.gpu.nvml"
ARRAYS = "provision.node_programs.gpu.arrays"


def parse_json_result(raw: Raw, what: str) -> dict[str, Any]:
    """The last line of stdout as the workload's JSON object (pure)."""
    lines = raw.stdout.strip().splitlines()
    if not lines:
        tail = (raw.stderr.strip().splitlines() or ["no output"])[-1]
        raise InputError(f"{raw.key}: {what} printed nothing ({tail[:200]})")
    try:
        doc = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise InputError(f"{raw.key}: {what} output is not JSON ({exc.msg})") from None
    if not isinstance(doc, dict) or doc.get("schema_version") != 1:
        raise InputError(f"{raw.key}: {what} output has no schema_version 1")
    return doc


def _gpu_fields(g: dict[str, Any]) -> dict[str, Any]:
    return {"gpu": g.get("index"), "model": g.get("name"), "uuid": g.get("uuid")}


def counter_records(plan: NodePlan, check: str, before: dict[str, Any],
                    after: dict[str, Any]) -> list[Measurement]:
    """ECC and row-remap counters after a workload, with the change in the detail."""
    out: list[Measurement] = []
    old = {g["index"]: g for g in before.get("gpus", [])}
    for g in after.get("gpus", []):
        b = old.get(g["index"], {})
        for key, fatal_max in (("ecc_uncorrected_volatile", 0.0), ("remapped_rows_failed", 0.0),
                               ("remapped_rows_pending", 0.0), ("ecc_corrected_volatile", None),
                               ("remapped_rows_uncorrectable", None)):
            v = g.get(key)
            if v is None:
                continue
            delta = float(v) - float(b.get(key) or 0)
            out.append(Measurement(node=plan.node, metric=key, value=float(v), check=check,
                                   max=fatal_max, profile=plan.profile,
                                   detail=f"{delta:+g} during the {check} run",
                                   **_gpu_fields(g)))
        if g.get("pcie_replay_counter") is not None and b.get("pcie_replay_counter") is not None:
            # a PCIe link that retransmits under load is marginal (riser, slot, cable)
            delta = float(g["pcie_replay_counter"]) - float(b["pcie_replay_counter"])
            out.append(Measurement(node=plan.node, metric="pcie_replay_delta", value=delta,
                                   check=check, max=0.0, unit="count", profile=plan.profile,
                                   source="NVML nvmlDeviceGetPcieReplayCounter before/after",
                                   detail=f"{b['pcie_replay_counter']} -> "
                                          f"{g['pcie_replay_counter']} during the {check} run",
                                   **_gpu_fields(g)))
    return out


def pcie_records(plan: NodePlan, check: str, g: dict[str, Any]) -> list[Measurement]:
    """Host copies and the link they ran on, judged (pure)."""
    pcie = g.get("pcie") or {}
    out = []
    for name, key in (("pcie_h2d_bw", "h2d"), ("pcie_d2h_bw", "d2h")):
        if (pcie.get(key) or {}).get("bandwidth_gbs") is not None:
            out.append(judged(plan, name, pcie[key]["bandwidth_gbs"], check=check,
                              detail="pinned host memory, best copy", **_gpu_fields(g)))
    link = pcie.get("link_under_load") or {}
    for name, key in (("pcie_link_gen_load", "gen"), ("pcie_link_width_load", "width")):
        if link.get(key) is not None:
            out.append(judged(plan, name, link[key], check=check,
                              detail=f"sampled during a host-to-device copy; max "
                                     f"{link.get(key + '_max')}", **_gpu_fields(g)))
    return out


@dataclass(frozen=True)
class HbmOptions:
    size_mib: int = option(4096, unit="MiB", help="buffer copied on each GPU, per copy")


class Hbm(Check):
    name = "hbm"
    disruptive = True
    description = "HBM copy bandwidth per GPU vs the datasheet; ECC and remapped rows around it"
    tags = ("gpu", "memory", "performance")
    needs = Needs(gpu=True)
    timeout_s = 600.0
    references = ("hbm_bandwidth", "pcie_h2d_bw", "pcie_d2h_bw", "pcie_link_gen_load")
    Options = HbmOptions

    def _program(self, ctx: Context) -> tuple[list[str], str]:
        opts: HbmOptions = ctx.options
        size = opts.size_mib
        return python_program("provision.node_programs.gpu.hbm", [NVML, ARRAYS],
                              ["--size-mib", str(size), "--repeat", "20"],
                              python=ctx.gpu_python)

    def argv(self, ctx: Context) -> list[str]:
        return self._program(ctx)[0]

    def stdin(self, ctx: Context) -> str | None:
        return self._program(ctx)[1]

    def parse(self, raw: Raw) -> dict[str, Any]:
        return parse_json_result(raw, "the HBM workload")

    def sanity(self, data: dict[str, Any]) -> list[str]:
        if data.get("error"):
            return [str(data["error"])]
        bad = [str(g["index"]) for g in data["gpus"] if not g.get("verified")]
        return [f"copy result wrong on GPU {', '.join(bad)}"] if bad else []

    def measurements(self, data: dict[str, Any], plan: NodePlan) -> list[Measurement]:
        out = [judged(plan, "hbm_bandwidth", g["bandwidth_gbs"], check=self.name,
                      detail=f"{g['method']} best of {g['repeat']}, {g['size_bytes'] >> 20} MiB, "
                             f"{data['backend']}", **_gpu_fields(g)) for g in data["gpus"]]
        for g in data["gpus"]:
            out += pcie_records(plan, self.name, g)
        return out + counter_records(plan, self.name, data.get("nvml_before", {}),
                                     data.get("nvml_after", {}))


#: acceptance burn-in: infant mortality and HBM/thermal-interface faults show over hours
#: (typical acceptance burn-in is 12-48 h); re-qualification runs minutes (forge requalify)
DEFAULT_BURNIN_MINUTES = 720
#: clocks-event reasons that mean a hardware fault during burn-in (PSU, cooling, board):
#: any sample with one fails the GPU (NVML nvmlClocksEventReason*, docs/checks.md)
HW_CLOCK_EVENTS = (("clocks_event_hw_slowdown", "HW Slowdown"),
                   ("clocks_event_hw_power_brake", "HW Power Brake Slowdown"),
                   ("clocks_event_hw_thermal", "HW Thermal Slowdown"))


# A burn-in's mean power is judged only over a minute or more: a shorter run's mean is
# dominated by allocation, warm-up and (CuPy) kernel compilation at idle power. Measured on
# an H200 SXM (docs/checks.md "Measured on an H200"): 5 s runs averaged 0.84 (PyTorch) and
# 0.30 (CuPy) of the 700 W limit, 60 s 0.91, 120 s 0.91.
POWER_JUDGED_FROM_S = 60.0


def _power_record(plan: NodePlan, check: str, s: dict[str, Any], seconds: float,
                  fields: dict[str, Any]) -> Measurement:
    detail = (f"mean of {s['samples']} samples in {seconds:g} s, max {s['power_max_w']} W, "
              f"limit {s['power_limit_w']} W")
    record = judged(plan, "gpu_power_fraction", s["power_mean_w"], check=check,
                    detail=detail, **fields)
    if seconds >= POWER_JUDGED_FROM_S:
        return record
    return replace(record, min=None, max=None, source=None,
                   detail=f"{detail}; recorded, not judged: the mean of a burn-in under "
                          f"{POWER_JUDGED_FROM_S:g} s is mostly ramp-up")


def clock_event_records(plan: NodePlan, check: str, g: dict[str, Any],
                        seconds: float) -> list[Measurement]:
    """Hardware clocks events during a burn-in, judged: any at all fails (pure)."""
    s = g.get("samples") or {}
    return [Measurement(node=plan.node, metric=metric, value=float(s[metric]), check=check,
                        profile=plan.profile, max=0.0, unit="ratio",
                        source=f"NVML clocks-event reason {label}: a hardware fault "
                               f"during burn-in",
                        detail=f"share of {s.get('samples')} samples in {seconds:g} s",
                        **_gpu_fields(g))
            for metric, label in HW_CLOCK_EVENTS if s.get(metric) is not None]


@dataclass(frozen=True)
class SdcOptions:
    burnin_seconds: float | None = option(
        None, unit="s", help="burn-in length (default: acceptance.burnin_minutes of the spec, "
                             f"else {DEFAULT_BURNIN_MINUTES} min)")
    inject_flip: str | None = option(
        None, pattern=r"\d+:\d+", help="GPU:ITER flips one output bit of GPU in iteration "
                                        "ITER, to prove the check catches it (unset: none)")


class SdcBurnin(Check):
    name = "sdc"
    disruptive = True
    description = ("deterministic GEMM burn-in: bit-identical checksums per GPU and across GPUs "
                   "of a model; TFLOP/s, power, temperature, clocks-event reasons")
    tags = ("gpu", "burn-in", "sdc")
    needs = Needs(gpu=True)
    timeout_s = 3600.0
    references = ("gemm_tflops", "gpu_power_fraction")
    Options = SdcOptions

    def seconds(self, ctx: Context) -> float:
        opts: SdcOptions = ctx.options
        if opts.burnin_seconds:
            return opts.burnin_seconds
        return float(ctx.site.acceptance_map.get("burnin_minutes",
                                                 DEFAULT_BURNIN_MINUTES)) * 60

    def timeout(self, ctx: Context) -> float:
        return max(super().timeout(ctx), self.seconds(ctx) + 300)

    def _program(self, ctx: Context) -> tuple[list[str], str]:
        args = ["--seconds", f"{self.seconds(ctx):g}"]
        opts: SdcOptions = ctx.options
        if opts.inject_flip:
            args += ["--inject-flip", opts.inject_flip]
        return python_program("provision.node_programs.gpu.sdc", [NVML, ARRAYS], args,
                              python=ctx.gpu_python)

    def argv(self, ctx: Context) -> list[str]:
        return self._program(ctx)[0]

    def stdin(self, ctx: Context) -> str | None:
        return self._program(ctx)[1]

    def parse(self, raw: Raw) -> dict[str, Any]:
        return parse_json_result(raw, "the SDC burn-in")

    def sanity(self, data: dict[str, Any]) -> list[str]:
        if data.get("error"):
            return [str(data["error"])]
        problems = list(data.get("errors", []))
        if not data.get("gpus"):
            problems.append("no GPU ran")
        return problems

    def measurements(self, data: dict[str, Any], plan: NodePlan) -> list[Measurement]:
        out: list[Measurement] = []
        src = f"profile {plan.profile}: deterministic GEMM gives identical bits"
        for g in data["gpus"]:
            kw = _gpu_fields(g)
            wrong = int(g["self_mismatch"]) + int(g["cohort_mismatch"])
            out.append(exact(plan, "sdc_mismatch", wrong, 0, check=self.name, source=src,
                             detail=f"{g.get('gemms_checked', g['iterations'])} GEMMs checked "
                                    f"in {g['iterations']} iterations over "
                                    f"{g.get('result_bytes', 0) >> 30} GiB of results; "
                                    f"self {g['self_mismatch']} "
                                    f"{g['self_mismatch_iterations']}, cohort "
                                    f"{g['cohort_mismatch']} {g['cohort_mismatch_iterations']}",
                             **kw))
            if g.get("tflops_mean") is not None:
                out.append(judged(plan, "gemm_tflops", g["tflops_mean"], check=self.name,
                                  detail=f"{data['dtype']} n={data['n']}, best "
                                         f"{g['tflops_best']}, {data['backend']}", **kw))
            s = g.get("samples", {})
            if s.get("power_mean_w") is not None:
                out.append(_power_record(plan, self.name, s, float(data["seconds"]), kw))
            out += clock_event_records(plan, self.name, g, float(data["seconds"]))
            for metric, key in (("gpu_temperature", "temperature_max_c"),
                                ("gpu_sm_clock", "sm_clock_mean_mhz"),
                                ("clocks_event_thermal", "clocks_event_thermal"),
                                ("clocks_event_power", "clocks_event_power")):
                if s.get(key) is not None:
                    out.append(Measurement(node=plan.node, metric=metric, value=float(s[key]),
                                           check=self.name, profile=plan.profile,
                                           detail=f"during {data['seconds']:g} s burn-in", **kw))
        return out

    def compare_nodes(self, parsed: dict[str, dict[str, Any]],
                      plan: SitePlan) -> list[Measurement]:
        """Every GPU of a model and software stack must give the same bits on every node."""
        groups: dict[tuple[str, str, str], list[tuple[str, dict[str, Any]]]] = {}
        for node, data in parsed.items():
            for g in data.get("gpus", []):
                key = (str(g.get("name")), str(data.get("backend")), str(data.get("driver")))
                groups.setdefault(key, []).append((node, g))
        out: list[Measurement] = []
        for (model, backend, driver), members in groups.items():
            nodes = {n for n, _ in members}
            if len(nodes) < 2:
                continue
            refs = Counter(g.get("reference") for _, g in members)
            top, _ = refs.most_common(1)[0]
            for node, g in members:
                ok = g.get("reference") == top
                out.append(Measurement(
                    node=node, metric="sdc_mismatch", value=0.0 if ok else 1.0,
                    max=0.0, check=self.name, peer="fleet", profile=plan.for_node(node).profile,
                    source=f"{model} with {backend}, driver {driver}: one result on every node",
                    detail=f"checksum {str(g.get('reference'))[:16]} vs fleet majority "
                           f"{str(top)[:16]} over {len(members)} GPUs on {len(nodes)} nodes",
                    **_gpu_fields(g)))
        return out

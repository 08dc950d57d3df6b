"""gpu-burn (wilicc/gpu-burn) output.

Progress lines carry one ``proc'd: N (G Gflop/s)`` and one error count per
GPU (``-`` separated when there are several); the last progress line is the
result. The final ``Tested N GPUs: GPU k: OK|FAULTY`` block is the verdict
when present (older versions and killed runs do not print it). ``Couldn't
init a GPU test`` is a failure of the run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from provision.measurement import Measurement
from provision.parsers.base import parse_error, record, require_text, resolve_node

TOOL = "gpu-burn"
_GPU = re.compile(r"^GPU (\d+): (.+?) \(UUID: ([^)]+)\)$")
_PROGRESS = re.compile(r"^([\d.]+)%\s+proc'd:\s*(.*?)\s+errors:\s*(.*?)(?:\s+temps:\s*(.*))?$")
_VERDICT = re.compile(r"^GPU (\d+): (OK|FAULTY)\b")


@dataclass(frozen=True)
class BurnGpu:
    index: int
    model: str | None
    uuid: str | None
    gflops: float | None  # from the last progress line
    errors: int | None
    temperature_c: float | None
    verdict: str | None  # "OK", "FAULTY" or None when no summary was printed


@dataclass(frozen=True)
class GpuBurnResult:
    node: str
    gpus: tuple[BurnGpu, ...]
    progress_pct: float | None
    summary: bool  # the 'Tested N GPUs' block was printed
    errors: tuple[str, ...]  # init errors the tool printed


def detect(text: str) -> bool:
    return bool(re.search(r"proc'd:|Burning for \d+|^Tested \d+ GPUs|Couldn't init a GPU test|"
                          r"Initialized device \d+ with", text, re.M))


#: one GPU's error cell: '0', '-524288000  (WARNING!)', '1579  (DIED!)'; gpu-burn joins them
#: with ' - ' but writes '(DIED!)- ' after an alarm, so they are found, not split
_ERR_CELL = re.compile(r"-?\d+(?:\s*\((?:DIED!|WARNING!)\))?")


def _split(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\s+-\s+", text.strip())] if text else []


def parse(text: str, *, node: str | None = None, source_name: str = "<stdin>") -> GpuBurnResult:
    lines = require_text(TOOL, text, source_name)
    info: dict[int, tuple[str, str]] = {}
    last: tuple[float, list[str], list[str], list[str]] | None = None
    verdicts: dict[int, str] = {}
    errors: list[str] = []
    summary = False
    for raw in lines:
        ln = raw.strip()
        if m := _GPU.match(ln):
            info[int(m[1])] = (m[2], m[3])
        elif m := _PROGRESS.match(ln):
            last = (float(m[1]), _split(m[2]), _ERR_CELL.findall(m[3]), _split(m[4] or ""))
        elif re.match(r"Tested \d+ GPUs", ln):
            summary = True
        elif summary and (m := _VERDICT.match(ln)):
            verdicts[int(m[1])] = m[2]
        elif ln.startswith("Couldn't init") or re.search(
                r"\bError in\b|CUDA_ERROR|FATAL|No clients are alive", ln):
            errors.append(ln)
    if last is None and not verdicts and not errors:
        # 'GPU 0: ... (UUID: ...)' alone is nvidia-smi -L (or an nvlink listing), not a burn
        raise parse_error(TOOL, source_name, 1, "no progress, verdict or gpu-burn error line "
                          "found")
    count = max([len(last[1]) if last else 0, *(k + 1 for k in info), *(k + 1 for k in verdicts)])
    gpus = []
    for k in range(count):
        proc = last[1][k] if last and k < len(last[1]) else ""
        gm = re.search(r"\(([\d.]+) Gflop/s\)", proc)
        err = last[2][k] if last and k < len(last[2]) else ""
        temp = last[3][k] if last and k < len(last[3]) else ""
        tm = re.match(r"(-?\d+)", temp)
        model, uuid = info.get(k, (None, None))
        em = re.match(r"(-?\d+)\s*(?:\((DIED!|WARNING!)\))?", err)
        n_err = int(em[1]) if em else None
        verdict = verdicts.get(k)
        # gpu-burn's own alarms, in its words, when the run ended without its summary
        # (DIED!: the worker process is gone; a negative count cannot be a count)
        if verdict is None and em and (em[2] == "DIED!" or (n_err is not None and n_err < 0)):
            verdict = f"{em[2] or 'impossible error count'} (errors: {n_err})"
        gpus.append(BurnGpu(k, model, uuid, float(gm[1]) if gm else None,
                            n_err if n_err is not None and n_err >= 0 else None,
                            float(tm[1]) if tm else None, verdict))
    return GpuBurnResult(resolve_node(TOOL, source_name, None, node), tuple(gpus),
                         last[0] if last else None, summary, tuple(errors))


def measurements(result: GpuBurnResult, check: str | None = None) -> list[Measurement]:
    check = check or TOOL
    out: list[Measurement] = []
    if result.errors:
        out.append(record(result.node, "tool_ran_ok", 0, check=check, min=1.0,
                          detail=f"gpu-burn: {result.errors[0]}"[:300]))
    for g in result.gpus:
        kw: dict[str, Any] = {"gpu": g.index, "model": g.model, "check": check,
              "uuid": g.uuid if g.uuid and "xxxx" not in g.uuid else None}
        if g.gflops is not None:
            out.append(record(result.node, "gpu_burn_gflops", g.gflops,
                              detail=f"last progress line ({result.progress_pct}%)", **kw))
        if g.errors is not None:
            out.append(record(result.node, "gpu_burn_errors", g.errors, max=0.0, **kw))
        if g.temperature_c is not None:
            out.append(record(result.node, "gpu_temperature", g.temperature_c,
                              detail="during gpu-burn", **kw))
        if g.verdict is not None:
            out.append(record(result.node, "gpu_burn_ok", 1 if g.verdict == "OK" else 0,
                              min=1.0, detail=g.verdict, **kw))
    return out

"""One prepared GPU proof: every GPU code path of forge on one GPU, one JSON document.

``python -m provision.node_programs.gpu.proof [--gpu 0] [--burnin-seconds 120]`` runs, sized to
finish well under 8 minutes on one H100/H200 (about 3 by the arithmetic; to be
measured on a GPU):

1. ``cpu_core``: the pure cores on the CPU (every-GEMM comparison catching a
   flipped bit, result-buffer arithmetic, clocks-event judging, Xid catalog);
2. ``nvml``: an NVML snapshot of the GPU (nvidia-ml-py);
3. ``hbm``: copy bandwidth as a fraction of the datasheet figure, host-to-device
   and device-to-host bandwidth, the PCIe link sampled while a copy runs;
4. ``burnin``: the SDC burn-in (every GEMM compared on the GPU, result buffers
   over 90 % of HBM) with GEMM TFLOP/s as a fraction of dense BF16 peak, mean
   power against the board limit, and the hardware clocks events judged;
5. ``sdc_injected``: the same burn-in with one bit flipped in iteration 1,
   which must be caught exactly there.

Datasheet figures come from forge's hardware catalog (``provision/spec/
catalog.yaml``, matched by the NVML name); a model it lacks gets no fraction,
said so. On a machine without a GPU (or without PyTorch/CuPy or NVML) every
step that cannot run is listed under ``skipped`` with the reason, and the exit
code is 0 if everything that ran passed (1 if anything failed).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

SCHEMA_VERSION = 1


def datasheet(name: str | None) -> dict[str, Any] | None:
    """The catalog's figures of the GPU model whose name NVML reports: the model whose
    ``nvml_name`` it is, else the longest model name inside it."""
    from provision.spec.profiles import catalog

    if not name:
        return None
    models = catalog().get("gpu_models", {})
    exact = [k for k, m in models.items() if str(m.get("nvml_name", "")).lower() == name.lower()]
    hits = exact or [k for k in models if k.lower() in name.lower()]
    if not hits:
        return None
    key = max(hits, key=len)
    return {"model": key, **{k: v for k, v in models[key].items() if k != "sources"},
            "source": (models[key].get("sources") or {}).get("_", "")}


def cpu_core() -> dict[str, Any]:
    """The pure parts of the GPU code paths, run on the CPU with numpy."""
    import numpy as np

    from provision.node_programs.gpu import nvml, sdc
    from provision.parsers import xid_catalog

    golden = np.arange(4096, dtype=np.float16).reshape(64, 64)
    results = [golden.copy() for _ in range(8)]
    results[5].view(np.uint8).ravel()[3] ^= 1
    wrong = [int(sdc.wrong_elements(np, r, golden, np.int16)) for r in results]
    samples: list[dict[str, Any]] = [{"clocks_events": []} for _ in range(9)]
    samples.append({"clocks_events": ["hw_power_brake_slowdown"]})
    summary = nvml.summarize(samples)
    checks = {
        "every_gemm_compared_flip_caught": wrong == [0, 0, 0, 0, 0, 1, 0, 0],
        "result_buffers_fill_hbm": sdc.result_slots(93 * 2**30, 8192, 2) == 661,
        "power_brake_sample_counted": summary["clocks_event_hw_power_brake"] == 0.1,
        "xid_13_application_79_hardware": (
            not xid_catalog.is_hardware(xid_catalog.judge(13))
            and xid_catalog.is_hardware(xid_catalog.judge(79))),
    }
    return {"passed": all(checks.values()), "checks": checks}


def hbm_step(size_mib: int, sheet: dict[str, Any] | None) -> dict[str, Any]:
    from provision.node_programs.gpu import hbm

    res = hbm.run(size_mib=size_mib, repeat=10)
    g = res["gpus"][0]
    pcie = g.get("pcie") or {}
    link = pcie.get("link_under_load") or {}
    out: dict[str, Any] = {
        "backend": res["backend"], "bandwidth_gbs": g["bandwidth_gbs"], "method": g["method"],
        "verified": g["verified"],
        "h2d_gbs": (pcie.get("h2d") or {}).get("bandwidth_gbs"),
        "d2h_gbs": (pcie.get("d2h") or {}).get("bandwidth_gbs"),
        "pcie_link_under_load": link,
    }
    ok = bool(g["verified"]) and bool(out["h2d_gbs"]) and bool(out["d2h_gbs"])
    if sheet and sheet.get("memory_bandwidth_gbs"):
        frac = g["bandwidth_gbs"] / float(sheet["memory_bandwidth_gbs"])
        out["fraction_of_datasheet"] = round(frac, 3)
        out["datasheet_gbs"] = sheet["memory_bandwidth_gbs"]
        ok = ok and frac >= 0.75
    if sheet and link.get("gen") is not None:
        ok = ok and link["gen"] >= int(sheet.get("pcie_gen", 0))
    out["passed"] = ok
    return out


def burnin_step(seconds: float, sheet: dict[str, Any] | None) -> dict[str, Any]:
    from provision.checks.gpuwork import HW_CLOCK_EVENTS
    from provision.node_programs.gpu import sdc

    res = sdc.run(seconds=seconds)
    g = res["gpus"][0]
    s = g.get("samples") or {}
    events = {metric: s.get(metric) for metric, _ in HW_CLOCK_EVENTS}
    out: dict[str, Any] = {
        "backend": res["backend"], "dtype": res["dtype"], "n": res["n"],
        "iterations": g["iterations"], "result_buffers": g["result_buffers"],
        "result_gib": round(g["result_bytes"] / 2**30, 1), "gemms_checked": g["gemms_checked"],
        "gemms_wrong": g["gemms_wrong"], "tflops_mean": g["tflops_mean"],
        "power_mean_w": s.get("power_mean_w"), "power_max_w": s.get("power_max_w"),
        "power_limit_w": s.get("power_limit_w") or g.get("power_limit_w"),
        "temperature_max_c": s.get("temperature_max_c"), "hw_clock_events": events,
        "errors": res["errors"],
    }
    ok = not res["errors"] and g["gemms_wrong"] == 0 and g["self_mismatch"] == 0
    ok = ok and not any(v for v in events.values())
    if sheet and sheet.get("bf16_dense_tflops") and g["tflops_mean"]:
        out["fraction_of_dense_peak"] = round(g["tflops_mean"] / sheet["bf16_dense_tflops"], 3)
    if out["power_mean_w"] and out["power_limit_w"]:
        out["power_fraction_of_limit"] = round(out["power_mean_w"] / out["power_limit_w"], 3)
    out["passed"] = ok
    return out


def injected_step() -> dict[str, Any]:
    from provision.node_programs.gpu import sdc

    res = sdc.run(seconds=5, max_slots=16, inject=(0, 1))
    g = res["gpus"][0]
    caught = g["gemms_wrong"] == 1 and g["self_mismatch_iterations"] == [1]
    return {"passed": caught and not res["errors"], "gemms_wrong": g["gemms_wrong"],
            "elements_wrong": g["elements_wrong"], "at_iterations":
            g["self_mismatch_iterations"], "iterations": g["iterations"],
            "errors": res["errors"]}


def _failure(exc: Exception) -> dict[str, Any]:
    """A step that raised: failed, with the exception's type and message."""
    return {"passed": False, "error": f"{type(exc).__name__}: {exc}"[:400]}


def run(gpu: int, burnin_seconds: float, hbm_mib: int) -> dict[str, Any]:
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", str(gpu))
    os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    from provision.node_programs.gpu import arrays, nvml

    t0 = time.monotonic()
    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "kind": "forge-gpu-proof",
                           "host": socket.gethostname(), "gpu": gpu,
                           "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "steps": {}, "skipped": {}}

    def step(name: str, fn: Callable[[], dict[str, Any]]) -> None:
        s = time.monotonic()
        try:
            doc["steps"][name] = {**fn(), "seconds": round(time.monotonic() - s, 1)}
        except Exception as exc:  # a failing step is a result, reported, never hidden
            doc["steps"][name] = {**_failure(exc), "seconds": round(time.monotonic() - s, 1)}

    step("cpu_core", cpu_core)
    sheet = None
    try:
        snap = nvml.snapshot()
        g = next((x for x in snap["gpus"] if x["index"] == gpu), snap["gpus"][0])
        sheet = datasheet(g.get("name"))
        doc["steps"]["nvml"] = {"passed": True, "driver": snap.get("driver"), "gpu": g,
                                "gpus_on_node": len(snap["gpus"]), "datasheet": sheet
                                or f"no catalog figures for {g.get('name')}"}
    except nvml.NvmlUnavailable as exc:
        doc["skipped"]["nvml"] = str(exc)
    except Exception as exc:  # an NVML call forge gets wrong is a failed step, not a crash
        doc["steps"]["nvml"] = _failure(exc)
    try:
        arrays.backend()
        gpu_ok = True
    except arrays.NoGpu as exc:
        gpu_ok = False
        for name in ("hbm", "burnin", "sdc_injected"):
            doc["skipped"][name] = f"no usable GPU: {exc}"
    if gpu_ok and "nvml" in doc["skipped"]:
        for name in ("hbm", "burnin", "sdc_injected"):
            doc["skipped"][name] = "NVML is needed to judge the GPU runs"
        gpu_ok = False
    if gpu_ok:
        step("hbm", lambda: hbm_step(hbm_mib, sheet))
        step("burnin", lambda: burnin_step(burnin_seconds, sheet))
        step("sdc_injected", injected_step)
    doc["seconds"] = round(time.monotonic() - t0, 1)
    doc["failed"] = sorted(k for k, v in doc["steps"].items() if not v.get("passed"))
    doc["passed"] = not doc["failed"]
    return doc


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m provision.node_programs.gpu.proof")
    ap.add_argument("--gpu", type=int, default=0, help="the GPU to prove (default 0)")
    ap.add_argument("--burnin-seconds", type=float, default=120.0)
    ap.add_argument("--hbm-size-mib", type=int, default=4096)
    args = ap.parse_args(argv)
    doc = run(args.gpu, args.burnin_seconds, args.hbm_size_mib)
    json.dump(doc, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")
    return 0 if doc["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

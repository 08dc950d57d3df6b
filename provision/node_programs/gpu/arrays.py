"""Which GPU array library to use: PyTorch or CuPy, whichever imports and sees a GPU."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any


class NoGpu(RuntimeError):
    """Neither PyTorch with CUDA nor CuPy with a device is usable here."""


def backend(prefer: str = "auto") -> tuple[str, Any]:
    """``("torch", torch)`` or ``("cupy", cupy)``; raises :class:`NoGpu` with every reason."""
    reasons = []
    order = ["torch", "cupy"] if prefer in ("auto", "torch") else ["cupy", "torch"]
    for name in order:
        try:
            if name == "torch":
                import torch

                if torch.cuda.is_available() and torch.cuda.device_count() > 0:
                    return "torch", torch
                reasons.append("torch: no CUDA device")
            else:
                import cupy

                if cupy.cuda.runtime.getDeviceCount() > 0:
                    return "cupy", cupy
                reasons.append("cupy: no CUDA device")
        except Exception as exc:  # ImportError, CUDA driver errors
            reasons.append(f"{name}: {type(exc).__name__}: {exc}"[:200])
    raise NoGpu("; ".join(reasons))


def print_result(compute: Callable[[], dict[str, Any]], schema_version: int) -> int:
    """Run a GPU workload and print its JSON result on stdout.

    Exit 0 with the result, or 3 with ``{"error": ...}`` when no GPU can be used,
    so launchers tell "no GPU here" from a failed measurement.
    """
    from provision.node_programs.gpu import nvml

    try:
        result = compute()
    except (NoGpu, nvml.NvmlUnavailable) as exc:
        json.dump({"schema_version": schema_version, "error": str(exc), "gpus": []}, sys.stdout)
        sys.stdout.write("\n")
        return 3
    json.dump(result, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0

"""HBM bandwidth per GPU: a device-to-device copy timed with CUDA events, best of N.

Two methods per GPU: ``cudaMemcpy`` device-to-device (copy engines) and a
large elementwise copy kernel (SMs). Each moves ``2 x size`` bytes (read and
write); the best repetition counts, as a stream benchmark does. ECC counters
and remapped rows are read through NVML before and after.
``python -m provision.gpu.hbm [--size-mib N] [--repeat N]`` prints JSON.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

SCHEMA_VERSION = 1


def bytes_moved(size_bytes: int) -> int:
    """A copy reads and writes every byte once."""
    return 2 * size_bytes


def bandwidth_gbs(size_bytes: int, seconds: float) -> float:
    """Copy bandwidth in GB/s (10^9 bytes per second) for one copy of ``size_bytes``."""
    if seconds <= 0:
        raise ValueError("elapsed time must be positive")
    return bytes_moved(size_bytes) / seconds / 1e9


def best(times_s: Sequence[float]) -> float:
    """The fastest repetition (timing noise only ever adds time)."""
    if not times_s:
        raise ValueError("no timings")
    return min(times_s)


def summarize(size_bytes: int, times_s: Sequence[float]) -> dict[str, float]:
    t = best(times_s)
    mean = sum(times_s) / len(times_s)
    return {"best_s": t, "mean_s": mean, "bandwidth_gbs": round(bandwidth_gbs(size_bytes, t), 2),
            "mean_bandwidth_gbs": round(bandwidth_gbs(size_bytes, mean), 2)}


def _time_torch(torch: Any, dev: int, size: int, repeat: int) -> dict[str, Any]:
    with torch.cuda.device(dev):
        n = size // 4
        src = torch.ones(n, dtype=torch.float32, device=f"cuda:{dev}")
        dst = torch.empty_like(src)
        out: dict[str, Any] = {}
        for method in ("memcpy", "kernel"):
            times = []
            for i in range(repeat + 2):
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                if method == "memcpy":
                    dst.copy_(src, non_blocking=True)   # cudaMemcpyAsync D2D
                else:
                    torch.mul(src, 1.0, out=dst)        # elementwise read+write kernel
                b.record()
                b.synchronize()
                if i >= 2:                              # two warm-up runs
                    times.append(a.elapsed_time(b) / 1e3)
            out[method] = summarize(n * 4, times)
        ok = bool(torch.equal(dst, src))
        del src, dst
        torch.cuda.empty_cache()
        return {**out, "verified": ok}


def _time_cupy(cp: Any, dev: int, size: int, repeat: int) -> dict[str, Any]:
    with cp.cuda.Device(dev):
        n = size // 4
        src = cp.ones(n, dtype=cp.float32)
        dst = cp.empty_like(src)
        out: dict[str, Any] = {}
        for method in ("memcpy", "kernel"):
            times = []
            for i in range(repeat + 2):
                a, b = cp.cuda.Event(), cp.cuda.Event()
                a.record()
                if method == "memcpy":
                    cp.cuda.runtime.memcpyAsync(dst.data.ptr, src.data.ptr, n * 4,
                                                cp.cuda.runtime.memcpyDeviceToDevice, 0)
                else:
                    cp.multiply(src, 1.0, out=dst)
                b.record()
                b.synchronize()
                if i >= 2:
                    times.append(cp.cuda.get_elapsed_time(a, b) / 1e3)
            out[method] = summarize(n * 4, times)
        ok = bool(cp.array_equal(dst, src))
        del src, dst
        cp.get_default_memory_pool().free_all_blocks()
        return {**out, "verified": ok}


def run(size_mib: int = 4096, repeat: int = 20, prefer: str = "auto") -> dict[str, Any]:
    from provision.gpu import arrays, nvml

    name, lib = arrays.backend(prefer)
    before = nvml.snapshot()
    count = lib.cuda.device_count() if name == "torch" else lib.cuda.runtime.getDeviceCount()
    size = size_mib * 2**20
    gpus = []
    for dev in range(count):
        timed = (_time_torch if name == "torch" else _time_cupy)(lib, dev, size, repeat)
        best_method = max(("memcpy", "kernel"), key=lambda m: timed[m]["bandwidth_gbs"])
        gpus.append({"index": dev, "size_bytes": size, "repeat": repeat, **timed,
                     "bandwidth_gbs": timed[best_method]["bandwidth_gbs"],
                     "method": best_method})
    after = nvml.snapshot()
    version = lib.__version__
    return {"schema_version": SCHEMA_VERSION, "backend": f"{name} {version}", "gpus": gpus,
            "nvml_before": before, "nvml_after": after}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m provision.gpu.hbm")
    ap.add_argument("--size-mib", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--backend", default="auto", choices=("auto", "torch", "cupy"))
    args = ap.parse_args(argv)
    from provision.gpu import arrays

    return arrays.print_result(lambda: run(args.size_mib, args.repeat, args.backend),
                               SCHEMA_VERSION)


if __name__ == "__main__":
    sys.exit(main())

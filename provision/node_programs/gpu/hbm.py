"""HBM bandwidth per GPU: a device-to-device copy timed with CUDA events, best of N.

Two methods per GPU: ``cudaMemcpy`` device-to-device (copy engines) and a
large elementwise copy kernel (SMs). Each moves ``2 x size`` bytes (read and
write); the best repetition counts, as a stream benchmark does. ECC counters
and remapped rows are read through NVML before and after.
Then host-to-device and device-to-host bandwidth over PCIe (pinned host
memory, ``size`` bytes one way), with the GPU's PCIe link generation and width
read through NVML *while* the copy runs: an idle link trains down to Gen1 by
design, so only a loaded link shows what it negotiated. CUDA devices are
enumerated in PCI order (``CUDA_DEVICE_ORDER=PCI_BUS_ID``) so index i is NVML's i.
``python -m provision.node_programs.gpu.hbm [--size-mib N] [--repeat N]`` prints JSON.
"""

from __future__ import annotations

import argparse
import os
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


def one_way_gbs(size_bytes: int, seconds: float) -> float:
    """Bandwidth of a one-way transfer (host copies cross the link once)."""
    if seconds <= 0:
        raise ValueError("elapsed time must be positive")
    return size_bytes / seconds / 1e9


class LinkReader:
    """Reads the PCIe link of CUDA device ``dev`` through an NVML handle opened in advance,
    so a reading takes microseconds and lands while an asynchronous copy is in flight."""

    def __init__(self, dev: int) -> None:
        from provision.node_programs.gpu import nvml

        self.nvml = nvml
        self.nv: Any = None
        self.error = ""
        try:
            self.nv = nvml._nvml()
            self.h = self.nv.nvmlDeviceGetHandleByIndex(nvml.nvml_index(dev))
        except Exception as exc:  # NVML missing: the copies still run, the link is unknown
            self.error = str(exc)

    def read(self) -> dict[str, Any]:
        if self.nv is None:
            return {"error": self.error}
        t, nv, h = self.nvml._try, self.nv, self.h
        return {"gen": t(nv.nvmlDeviceGetCurrPcieLinkGeneration, h),
                "width": t(nv.nvmlDeviceGetCurrPcieLinkWidth, h),
                "gen_max": t(nv.nvmlDeviceGetMaxPcieLinkGeneration, h),
                "width_max": t(nv.nvmlDeviceGetMaxPcieLinkWidth, h)}

    def close(self) -> None:
        if self.nv is not None:
            self.nv.nvmlShutdown()


def _host_copies(lib: Any, name: str, dev: int, size: int, repeat: int) -> dict[str, Any]:
    """H2D and D2H with pinned host memory, best of ``repeat``; the link sampled mid-copy."""
    n = size // 4
    out: dict[str, Any] = {}
    link: dict[str, Any] = {}
    if name == "torch":
        host = lib.ones(n, dtype=lib.float32, pin_memory=True)
        devbuf = lib.empty(n, dtype=lib.float32, device=f"cuda:{dev}")

        def event() -> Any:
            return lib.cuda.Event(enable_timing=True)

        def copy(h2d: bool) -> None:
            (devbuf.copy_(host, non_blocking=True) if h2d else
             host.copy_(devbuf, non_blocking=True))

        def elapsed(a: Any, b: Any) -> float:
            return float(a.elapsed_time(b)) / 1e3
        ctx: Any = lib.cuda.device(dev)
    else:
        ctx = lib.cuda.Device(dev)
        with ctx:
            host = lib.cuda.alloc_pinned_memory(n * 4)
            devbuf = lib.empty(n, dtype=lib.float32)

        def event() -> Any:
            return lib.cuda.Event()

        def copy(h2d: bool) -> None:
            kind = (lib.cuda.runtime.memcpyHostToDevice if h2d else
                    lib.cuda.runtime.memcpyDeviceToHost)
            dst, src = (devbuf.data.ptr, host.ptr) if h2d else (host.ptr, devbuf.data.ptr)
            lib.cuda.runtime.memcpyAsync(dst, src, n * 4, kind, 0)

        def elapsed(a: Any, b: Any) -> float:
            return float(lib.cuda.get_elapsed_time(a, b)) / 1e3
    reader = LinkReader(dev)
    with ctx:
        for direction in ("h2d", "d2h"):
            times = []
            for i in range(repeat + 2):
                a, b = event(), event()
                a.record()
                copy(direction == "h2d")
                b.record()
                if i == 2 and direction == "h2d":
                    link = reader.read()          # the copy is in flight
                b.synchronize()
                if i >= 2:
                    times.append(elapsed(a, b))
            t = best(times)
            out[direction] = {"best_s": t, "bandwidth_gbs": round(one_way_gbs(n * 4, t), 2)}
    reader.close()
    return {**out, "link_under_load": link}


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
    os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    from provision.node_programs.gpu import arrays, nvml

    name, lib = arrays.backend(prefer)
    before = nvml.snapshot()
    count = lib.cuda.device_count() if name == "torch" else lib.cuda.runtime.getDeviceCount()
    size = size_mib * 2**20
    gpus = []
    for dev in range(count):
        timed = (_time_torch if name == "torch" else _time_cupy)(lib, dev, size, repeat)
        best_method = max(("memcpy", "kernel"), key=lambda m: timed[m]["bandwidth_gbs"])
        host = _host_copies(lib, name, dev, min(size, 1 << 30), repeat)
        gpus.append({"index": dev, "size_bytes": size, "repeat": repeat, **timed,
                     "bandwidth_gbs": timed[best_method]["bandwidth_gbs"],
                     "method": best_method, "pcie": host})
    after = nvml.snapshot()
    version = lib.__version__
    return {"schema_version": SCHEMA_VERSION, "backend": f"{name} {version}", "gpus": gpus,
            "nvml_before": before, "nvml_after": after}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m provision.node_programs.gpu.hbm")
    ap.add_argument("--size-mib", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--backend", default="auto", choices=("auto", "torch", "cupy"))
    args = ap.parse_args(argv)
    from provision.node_programs.gpu import arrays

    return arrays.print_result(lambda: run(args.size_mib, args.repeat, args.backend),
                               SCHEMA_VERSION)


if __name__ == "__main__":
    sys.exit(main())

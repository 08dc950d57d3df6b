"""SDC burn-in: a deterministic GEMM on every GPU, every result compared on the GPU.

Fixed seeds and shapes and deterministic math (TF32 off, deterministic
cuBLAS workspace, one algorithm per shape) make every GPU of one model and
software stack produce the same bits. As in gpu-burn (wilicc/gpu-burn,
``gpu_burn-drv.cpp``), each GPU first computes a *golden* result, then fills
most of its free HBM (``--mem-fraction``, default 0.9) with result buffers;
every iteration writes one GEMM into each buffer and compares each buffer
bit for bit against the golden one *on the device* (a count of differing
elements, one host sync per iteration): every GEMM is checked, none
overwritten unseen. The golden result is hashed (sha256) at the start and
the end: the hash is what GPUs of a model are compared by, across the node
and the fleet. NVML samples power, temperature, clocks and clocks-event
reasons throughout. ``--inject-flip GPU:ITER`` flips one bit of that GPU's
first result buffer in that iteration, to prove that detection works.
``python -m provision.node_programs.gpu.sdc --seconds 60`` prints JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

SCHEMA_VERSION = 1


# --- the pure core (tested on the CPU with numpy)
def checksum(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def gemm_flops(n: int) -> float:
    """Floating-point operations of one n x n x n GEMM."""
    return 2.0 * n * n * n


def tflops(n: int, gemms: int, seconds: float) -> float:
    return gemm_flops(n) * gemms / seconds / 1e12


def flip_bit(buf: bytearray, bit: int = 0) -> None:
    """Flip bit ``bit`` of the buffer (in place): the injected silent error."""
    buf[bit // 8] ^= 1 << (bit % 8)


def compare(checksums: Mapping[int, Sequence[str]],
            models: Mapping[int, str]) -> dict[int, dict[str, Any]]:
    """Judge per-iteration checksums of each GPU.

    ``self_mismatch``: iterations whose checksum differs from the GPU's most
    common one (a GPU must repeat itself). ``cohort_mismatch``: iterations
    whose checksum differs from the most common one of the GPUs of the same
    model at that iteration (with two GPUs a disagreement marks both).
    """
    out: dict[int, dict[str, Any]] = {}
    by_model: dict[str, list[int]] = {}
    for g, m in models.items():
        by_model.setdefault(m, []).append(g)
    for g, sums in checksums.items():
        mine = Counter(sums).most_common(1)[0][0] if sums else None
        self_bad = [i for i, s in enumerate(sums) if s != mine]
        peers = [p for p in by_model.get(models.get(g, ""), []) if p in checksums]
        cohort_bad = []
        if len(peers) > 1:
            for i, s in enumerate(sums):
                at_i = [checksums[p][i] for p in peers if i < len(checksums[p])]
                top, n = Counter(at_i).most_common(1)[0]
                tie = list(Counter(at_i).values()).count(n) > 1
                if s != top or (tie and len(set(at_i)) > 1):
                    cohort_bad.append(i)
        out[g] = {"reference": mine, "self_mismatch": len(self_bad),
                  "self_mismatch_iterations": self_bad[:20],
                  "cohort_mismatch": len(cohort_bad),
                  "cohort_mismatch_iterations": cohort_bad[:20],
                  "iterations": len(sums)}
    return out


def wrong_elements(xp: Any, result: Any, golden: Any, int_dtype: Any) -> Any:
    """Elements of ``result`` whose bits differ from ``golden``, counted where the
    arrays live (numpy, CuPy or PyTorch: all have ``.view``, ``!=`` and count_nonzero).
    Comparing bits, not values, also catches a NaN and a flipped sign of zero."""
    return xp.count_nonzero(result.view(int_dtype) != golden.view(int_dtype))


def result_slots(free_bytes: int, n: int, itemsize: int, fraction: float = 0.9,
                 reserve_bytes: int = 1 << 30) -> int:
    """How many n x n result buffers fill ``fraction`` of free memory after a reserve
    for cuBLAS workspace and the inputs (at least 1)."""
    per = n * n * itemsize
    usable = int(free_bytes * fraction) - reserve_bytes
    return max(1, usable // per)


def keep_going(it: int, now: float, deadline: float, flip_at: int | None) -> bool:
    """Whether a GPU runs iteration ``it``: always the first, every one up to a requested
    flip's (however slow the first iterations are: CuPy compiles its kernels in iteration 0,
    and a run that ended before the flip would pass without having proved anything), then
    until the deadline."""
    return it == 0 or (flip_at is not None and it <= flip_at) or now < deadline


def parse_inject(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    gpu, _, it = text.partition(":")
    return int(gpu), int(it or 0)


# --- the GPU workload
def _deterministic(name: str, lib: Any) -> None:
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if name == "torch":
        lib.backends.cuda.matmul.allow_tf32 = False
        lib.backends.cudnn.allow_tf32 = False
        lib.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
        lib.use_deterministic_algorithms(True)


def _inputs(seed: int, n: int) -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.Generator(np.random.PCG64(seed))
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    return a, b


class _GpuWorker:
    def __init__(self, name: str, lib: Any, dev: int, n: int, seed: int,
                 mem_fraction: float, max_slots: int | None) -> None:
        self.name, self.lib, self.dev, self.n = name, lib, dev, n
        a, b = _inputs(seed, n)
        if name == "torch":
            d = f"cuda:{dev}"
            with lib.cuda.device(dev):
                self.a = lib.from_numpy(a).to(d, dtype=lib.bfloat16)
                self.b = lib.from_numpy(b).to(d, dtype=lib.bfloat16)
                self.golden = lib.matmul(self.a, self.b)
                lib.cuda.empty_cache()    # blocks an earlier run left cached count as free
                free, _ = lib.cuda.mem_get_info(dev)
                slots = result_slots(free, n, 2, mem_fraction)
                slots = min(slots, max_slots) if max_slots else slots
                self.results = [lib.empty((n, n), dtype=lib.bfloat16, device=d)
                                for _ in range(slots)]
            self.dtype, self.int_dtype = "bfloat16", lib.int16
        else:
            with lib.cuda.Device(dev):
                self.a = lib.asarray(a, dtype=lib.float16)
                self.b = lib.asarray(b, dtype=lib.float16)
                self.golden = lib.matmul(self.a, self.b)
                lib.get_default_memory_pool().free_all_blocks()
                free, _ = lib.cuda.runtime.memGetInfo()
                slots = result_slots(free, n, 2, mem_fraction)
                slots = min(slots, max_slots) if max_slots else slots
                self.results = [lib.empty((n, n), dtype=lib.float16) for _ in range(slots)]
            self.dtype, self.int_dtype = "float16", lib.int16

    def golden_bytes(self) -> bytes:
        lib = self.lib
        if self.name == "torch":
            with lib.cuda.device(self.dev):
                return bytes(self.golden.view(lib.int16).cpu().numpy().tobytes())
        with lib.cuda.Device(self.dev):
            return bytes(lib.asnumpy(self.golden).tobytes())

    def iteration(self, flip: bool) -> tuple[int, int, float]:
        """One GEMM into every result buffer, each compared with the golden result on the
        GPU; returns (GEMMs whose result differs, differing elements, GEMM seconds)."""
        lib = self.lib
        torch = self.name == "torch"
        ctx = lib.cuda.device(self.dev) if torch else lib.cuda.Device(self.dev)
        with ctx:
            s = lib.cuda.Event(enable_timing=True) if torch else lib.cuda.Event()
            e = lib.cuda.Event(enable_timing=True) if torch else lib.cuda.Event()
            s.record()
            for c in self.results:
                lib.matmul(self.a, self.b, out=c)
            e.record()
            if flip:
                raw = self.results[0].view(lib.uint8)
                (raw.view(-1) if torch else raw.ravel())[0] ^= 1
            counts = [wrong_elements(lib, c, self.golden, self.int_dtype) for c in self.results]
            stacked = lib.stack(counts)
            bad_gemms = int((stacked > 0).sum())
            bad_elems = int(stacked.sum())            # the one host sync of the iteration
            seconds = (s.elapsed_time(e) / 1e3 if torch else
                       lib.cuda.get_elapsed_time(s, e) / 1e3)
            return bad_gemms, bad_elems, seconds


def run(seconds: float, n: int = 8192, seed: int = 1234, mem_fraction: float = 0.9,
        inject: tuple[int, int] | None = None, prefer: str = "auto",
        sample_interval: float = 0.5, max_slots: int | None = None) -> dict[str, Any]:
    from provision.node_programs.gpu import arrays, nvml

    name, lib = arrays.backend(prefer)
    _deterministic(name, lib)
    count = lib.cuda.device_count() if name == "torch" else lib.cuda.runtime.getDeviceCount()
    snap = nvml.snapshot()
    # CUDA index d is NVML index nvml_index(d) (CUDA_VISIBLE_DEVICES may pick GPUs)
    static = {**snap, "gpus": [snap["gpus"][nvml.nvml_index(d)] for d in range(count)]}
    models = {d: g["name"] or "?" for d, g in enumerate(static["gpus"])}
    workers = [_GpuWorker(name, lib, d, n, seed, mem_fraction, max_slots)
               for d in range(count)]
    start_sums = {w.dev: checksum(w.golden_bytes()) for w in workers}
    wrong: dict[int, list[tuple[int, int]]] = {d: [] for d in range(count)}
    times: dict[int, list[float]] = {d: [] for d in range(count)}
    deadline = time.monotonic() + seconds
    errors: list[str] = []

    flip_at = {inject[0]: inject[1]} if inject is not None else {}
    if inject is not None and not 0 <= inject[0] < count:
        errors.append(f"--inject-flip names GPU {inject[0]}, but {count} GPU(s) are visible")

    def loop(w: _GpuWorker) -> None:
        it = 0
        try:
            while keep_going(it, time.monotonic(), deadline, flip_at.get(w.dev)):
                flip = flip_at.get(w.dev) == it
                gemms, elems, t = w.iteration(flip)
                wrong[w.dev].append((gemms, elems))
                times[w.dev].append(t)
                it += 1
        except Exception as exc:  # a CUDA error is a result: report it, do not hide it
            errors.append(f"GPU {w.dev}: {type(exc).__name__}: {exc}"[:300])

    with nvml.Sampler(sample_interval) as sampler:
        threads = [threading.Thread(target=loop, args=(w,)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    # the golden result hashed again: a GPU whose golden buffer changed disagrees with itself
    checksums = {w.dev: [start_sums[w.dev], checksum(w.golden_bytes())] for w in workers}
    verdict = compare(checksums, models)
    samples = sampler.summary()
    gpus = []
    for w in workers:
        d, ts = w.dev, times[w.dev]
        slots = len(w.results)
        bad = [i for i, (g, _) in enumerate(wrong[d]) if g]
        v = verdict[d]
        gpus.append({
            "index": d, "name": models.get(d), "uuid": static["gpus"][d].get("uuid"),
            "iterations": len(ts), "result_buffers": slots,
            "result_bytes": slots * n * n * 2, "gemms_checked": slots * len(ts),
            "gemms_wrong": sum(g for g, _ in wrong[d]),
            "elements_wrong": sum(e for _, e in wrong[d]),
            "checksums": checksums[d], "reference": v["reference"],
            # every wrong GEMM is a self mismatch; so is a golden result that changed
            "self_mismatch": sum(g for g, _ in wrong[d]) + v["self_mismatch"],
            "self_mismatch_iterations": bad[:20],
            "cohort_mismatch": v["cohort_mismatch"],
            "cohort_mismatch_iterations": v["cohort_mismatch_iterations"],
            "tflops_mean": round(tflops(n, slots * len(ts), sum(ts)), 2) if ts else None,
            "tflops_best": round(tflops(n, slots, min(ts)), 2) if ts else None,
            "samples": samples.get(nvml.nvml_index(d), {}),
            "power_limit_w": static["gpus"][d].get("power_limit_w"),
        })
    return {"schema_version": SCHEMA_VERSION, "backend": f"{name} {lib.__version__}",
            "driver": static.get("driver"), "dtype": workers[0].dtype if workers else None,
            "n": n, "seed": seed, "mem_fraction": mem_fraction, "seconds": seconds,
            "injected": list(inject) if inject else None, "errors": errors, "gpus": gpus}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m provision.node_programs.gpu.sdc")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--n", type=int, default=8192)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--mem-fraction", type=float, default=0.9,
                    help="share of free GPU memory filled with result buffers")
    ap.add_argument("--inject-flip", metavar="GPU:ITER", default=None)
    ap.add_argument("--backend", default="auto", choices=("auto", "torch", "cupy"))
    args = ap.parse_args(argv)
    from provision.node_programs.gpu import arrays

    return arrays.print_result(lambda: run(args.seconds, args.n, args.seed, args.mem_fraction,
                                           parse_inject(args.inject_flip), args.backend),
                               SCHEMA_VERSION)


if __name__ == "__main__":
    sys.exit(main())

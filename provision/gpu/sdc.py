"""SDC burn-in: a deterministic GEMM on every GPU, checksummed every iteration.

Fixed seeds and shapes and deterministic math (TF32 off, deterministic
cuBLAS workspace, one algorithm per shape) make every GPU of one model and
software stack produce the same bits. Each iteration runs ``inner`` GEMMs,
copies the output to the host and hashes it (sha256) in a background thread;
a GPU must match itself in every iteration and match the other GPUs of its
model. NVML samples power, temperature, clocks and clocks-event reasons
throughout. ``--inject-flip GPU:ITER`` flips one bit of that GPU's output in
that iteration, to prove that detection works.
``python -m provision.gpu.sdc --seconds 60`` prints JSON.
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
from concurrent.futures import Future, ThreadPoolExecutor
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
    def __init__(self, name: str, lib: Any, dev: int, n: int, seed: int, inner: int) -> None:
        self.name, self.lib, self.dev, self.n, self.inner = name, lib, dev, n, inner
        a, b = _inputs(seed, n)
        if name == "torch":
            d = f"cuda:{dev}"
            self.a = lib.from_numpy(a).to(d, dtype=lib.bfloat16)
            self.b = lib.from_numpy(b).to(d, dtype=lib.bfloat16)
            self.c = lib.empty((n, n), dtype=lib.bfloat16, device=d)
            self.dtype = "bfloat16"
        else:
            with lib.cuda.Device(dev):
                self.a = lib.asarray(a, dtype=lib.float16)
                self.b = lib.asarray(b, dtype=lib.float16)
                self.c = lib.empty((n, n), dtype=lib.float16)
            self.dtype = "float16"

    def iteration(self, flip: bool) -> tuple[bytes, float]:
        """``inner`` GEMMs timed with events; returns (output bytes, seconds)."""
        lib = self.lib
        if self.name == "torch":
            with lib.cuda.device(self.dev):
                s, e = lib.cuda.Event(enable_timing=True), lib.cuda.Event(enable_timing=True)
                s.record()
                for _ in range(self.inner):
                    lib.matmul(self.a, self.b, out=self.c)
                e.record()
                e.synchronize()
                if flip:
                    raw = self.c.view(lib.uint8).view(-1)
                    raw[0] ^= 1
                host = self.c.view(lib.int16).cpu().numpy().tobytes()
                return host, s.elapsed_time(e) / 1e3
        with lib.cuda.Device(self.dev):
            s, e = lib.cuda.Event(), lib.cuda.Event()
            s.record()
            for _ in range(self.inner):
                lib.matmul(self.a, self.b, out=self.c)
            e.record()
            e.synchronize()
            if flip:
                raw = self.c.view(lib.uint8).ravel()
                raw[0] ^= 1
            return lib.asnumpy(self.c).tobytes(), lib.cuda.get_elapsed_time(s, e) / 1e3


def run(seconds: float, n: int = 8192, seed: int = 1234, inner: int = 50,
        inject: tuple[int, int] | None = None, prefer: str = "auto",
        sample_interval: float = 0.5) -> dict[str, Any]:
    from provision.gpu import arrays, nvml

    name, lib = arrays.backend(prefer)
    _deterministic(name, lib)
    count = lib.cuda.device_count() if name == "torch" else lib.cuda.runtime.getDeviceCount()
    static = nvml.snapshot()
    models = {g["index"]: g["name"] or "?" for g in static["gpus"]}
    workers = [_GpuWorker(name, lib, d, n, seed, inner) for d in range(count)]
    sums: dict[int, list[Future[str]]] = {d: [] for d in range(count)}
    times: dict[int, list[float]] = {d: [] for d in range(count)}
    hasher = ThreadPoolExecutor(max_workers=max(2, count))
    deadline = time.monotonic() + seconds
    errors: list[str] = []

    def loop(w: _GpuWorker) -> None:
        it = 0
        try:
            while it == 0 or time.monotonic() < deadline:
                flip = inject is not None and inject == (w.dev, it)
                data, t = w.iteration(flip)
                sums[w.dev].append(hasher.submit(checksum, data))
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
    checksums = {d: [f.result() for f in fs] for d, fs in sums.items()}
    hasher.shutdown()
    verdict = compare(checksums, models)
    samples = sampler.summary()
    gpus = []
    for d in range(count):
        ts = times[d]
        gpus.append({
            "index": d, "name": models.get(d), "uuid": static["gpus"][d].get("uuid"),
            "iterations": len(ts), "checksums": checksums[d][:5],
            "tflops_mean": round(tflops(n, inner * len(ts), sum(ts)), 2) if ts else None,
            "tflops_best": round(tflops(n, inner, min(ts)), 2) if ts else None,
            **verdict[d], "samples": samples.get(d, {}),
            "power_limit_w": static["gpus"][d].get("power_limit_w"),
        })
    return {"schema_version": SCHEMA_VERSION, "backend": f"{name} {lib.__version__}",
            "driver": static.get("driver"), "dtype": workers[0].dtype if workers else None,
            "n": n, "seed": seed, "inner": inner, "seconds": seconds,
            "injected": list(inject) if inject else None, "errors": errors, "gpus": gpus}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m provision.gpu.sdc")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--n", type=int, default=8192)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--inner", type=int, default=50)
    ap.add_argument("--inject-flip", metavar="GPU:ITER", default=None)
    ap.add_argument("--backend", default="auto", choices=("auto", "torch", "cupy"))
    args = ap.parse_args(argv)
    from provision.gpu import arrays

    return arrays.print_result(lambda: run(args.seconds, args.n, args.seed, args.inner,
                          parse_inject(args.inject_flip), args.backend),
                               SCHEMA_VERSION)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Fleet-scale figures, each beside its naive baseline, measured in one run.

Every figure times whole processes from outside (interpreter start included),
A and B alternated (A B A B ...) after one warm-up each, and reports medians:
CPU seconds of the child (user + sys, the primary figure on a shared machine),
wall seconds, and the child's peak RSS; ratios are medians of the per-pair CPU
ratios.

- ``forge analyze --json`` of N GPUs x 40 metrics as JSONL and as Parquet, vs
  ``baselines/analyze_naive.py`` (orjson per line + numpy median/MAD) on the JSONL,
  the three run in turn (JSONL, Parquet, baseline) each round; target: 4M records
  in < 3 s and < 1.5 GiB, judged per input (wall and peak RSS medians).
- ``forge history --metric gpu_temperature --since 3d`` over the whole fleet,
  vs the ``sqlite3`` CLI printing the same rows; target <= 1.5x. Also the
  store's bytes per reading beside the same readings in the earlier schema
  (target >= 3x smaller) and ``HistoryStore.record()`` throughput beside what
  10,000 nodes sweeping every 15 minutes need.
- ``forge validate`` / ``forge render`` of an N-node spec vs
  ``baselines/render_naive.py`` (same host_vars, no schema, profiles or
  manifest); target <= 1.5x. Render twice: against the baseline's ``os.sync()``
  (whose write-back runs in kernel threads, outside its CPU time) and against
  the baseline fsyncing each file it wrote, the flush forge does.

    .venv/bin/python benchmarks/fleet_bench.py            # 4M records, 10M readings, 50k nodes
    .venv/bin/python benchmarks/fleet_bench.py --quick    # 512k, 1.5M, 10k: a few minutes
    .venv/bin/python benchmarks/fleet_bench.py --only analyze --work DIR   # reuses DIR's fleet
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
PY = sys.executable
FORGE = str(Path(PY).with_name("forge"))
TIME = "/usr/bin/time"  # GNU time: reports the command's own peak RSS

#: 10,000 nodes x 8 GPUs x 10 metrics every 15 minutes, over a day (76.8M; the sweeps here
#: write 80 readings a node, more than the ~30 a node behind the 30M-a-day estimate)
NEEDED_PER_DAY = 10_000 * 8 * 10 * 96
OLD_BYTES_PER_READING = 292  # the earlier schema, measured at 10M readings


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float
    rss_mib: float


def run_once(cmd: Sequence[str] | Callable[[], Sequence[str]]) -> Run:
    """One child process: wall, user + sys CPU and peak RSS, as ``/usr/bin/time`` reports them.

    ``time`` forks the command from its own small process: a child forked from this
    one directly would inherit this process's RSS high-water mark (the generated inputs
    are large) and hide a smaller peak of its own.
    """
    argv = list(cmd() if callable(cmd) else cmd)
    with tempfile.NamedTemporaryFile("r") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        p = subprocess.run([TIME, "-q", "-o", out.name, "-f", "%x %U %S %M", *argv],
                           stdout=subprocess.DEVNULL, stderr=err, check=False)
        wall = time.perf_counter() - t
        code, user, sys_s, rss_kib = out.read().split()[-4:]
        if int(code) not in (0, 1) or p.returncode not in (0, 1):  # 1: acceptance failed
            err.seek(0)
            tail = err.read().strip().splitlines()[-1:] or ["(no message)"]
            raise SystemExit(f"{argv[:4]}... exited {code}: {tail[0]}")
    return Run(wall, float(user) + float(sys_s), int(rss_kib) / 1024)


@dataclass(frozen=True)
class Row:
    name: str
    a: list[Run]
    b: list[Run]
    target: str
    holds: Callable[[Row], bool]

    def med(self, runs: list[Run], f: str) -> float:
        return statistics.median(getattr(r, f) for r in runs)

    @property
    def ratio(self) -> float:
        return statistics.median(a.cpu / b.cpu for a, b in zip(self.a, self.b, strict=True))

    def line(self) -> str:
        a, b = self.a, self.b
        verdict = "holds" if self.holds(self) else "MISSES"
        return (f"{self.name:<44} {self.med(a, 'cpu'):7.2f} {self.med(a, 'wall'):7.2f} "
                f"{self.med(a, 'rss_mib'):7.0f} | {self.med(b, 'cpu'):7.2f} "
                f"{self.med(b, 'wall'):7.2f} {self.med(b, 'rss_mib'):7.0f} | {self.ratio:5.2f} "
                f" {self.target} {verdict}")


def rotated(cmds: dict[str, Sequence[str]], rounds: int) -> dict[str, list[Run]]:
    """Every command once per round, in turn (one warm-up round first): the runs of each."""
    for argv in cmds.values():
        run_once(argv)
    runs: dict[str, list[Run]] = {k: [] for k in cmds}
    for _ in range(rounds):
        for k, argv in cmds.items():
            runs[k].append(run_once(argv))
    return runs


def paired(name: str, a: Sequence[str] | Callable[[], Sequence[str]],
           b: Sequence[str] | Callable[[], Sequence[str]], pairs: int, target: str,
           holds: Callable[[Row], bool]) -> Row:
    run_once(a)
    run_once(b)
    ra, rb = [], []
    for _ in range(pairs):
        ra.append(run_once(a))
        rb.append(run_once(b))
    row = Row(name, ra, rb, target, holds)
    print(row.line(), flush=True)
    return row


# --- inputs ------------------------------------------------------------------------------

def gen_fleet(nodes: int, out: Path) -> int:
    """``nodes`` x 8 H100 NVL GPUs x 40 metrics, lines shuffled; 200 GPUs 15 % slow on HBM."""
    rng = np.random.default_rng(11)
    gpn = 8
    gauss = [("hbm_bandwidth", "GB/s", "higher", "hbm", 3400, 0.008),
             ("gemm_tflops", "TFLOP/s", "higher", "burn-in", 640, 0.012),
             ("gpu_sm_clock", "MHz", "higher", "burn-in", 1755, 0.004),
             ("gpu_temperature", "C", "lower", "burn-in", 68, 0.03),
             ("gpu_memory_temperature", "C", "lower", "burn-in", 74, 0.03),
             ("gpu_power", "W", "lower", "burn-in", 352, 0.02),
             ("gpu_burn_gflops", "Gflop/s", "higher", "gpu-burn", 51000, 0.01),
             ("nvlink_p2p_bandwidth", "GB/s", "higher", "nvlink", 248, 0.01),
             ("nvlink_link_speed", "GB/s", "higher", "nvlink", 26.6, 0.002),
             ("gpudirect_bw", "Gb/s", "higher", "gpudirect", 193, 0.006)]
    metrics = []
    for k in range(34):
        name, unit, better, check, mean, sd = gauss[k % len(gauss)]
        metrics.append((name if k < len(gauss) else f"{name}_{k}", unit, better, check, mean, sd,
                        "gauss"))
    for name in ("ecc_uncorrected_volatile", "remapped_rows_failed", "xid_events",
                 "sdc_mismatch", "gpu_burn_errors"):
        metrics.append((name, "count", "lower", "health", 0, 0, "zero"))
    metrics.append(("pcie_link_width", "lanes", "higher", "conformance", 16, 0, "const"))
    n_gpus = nodes * gpn
    slow = rng.choice(n_gpus, min(200, n_gpus // 10), replace=False)
    lines: list[str] = []
    for mi, (name, unit, better, check, mean, sd, kind) in enumerate(metrics):
        if kind == "gauss":
            vals = mean * (1 + np.repeat(rng.normal(0, sd / 2, nodes), gpn)
                           + rng.normal(0, sd, n_gpus))
            if mi == 0:
                vals[slow] *= 0.85
        else:
            vals = np.full(n_gpus, float(mean))
        extra = ', "min": 16' if name == "pcie_link_width" else ""
        tail = (f', "unit": "{unit}", "better": "{better}", "model": "NVIDIA H100 NVL", '
                f'"check": "{check}"{extra}}}\n')
        lines.extend(f'{{"node": "gpu{g // gpn + 1:05d}", "gpu": {g % gpn}, "metric": "{name}", '
                     f'"value": {v}{tail}' for g, v in enumerate(np.round(vals, 3).tolist()))
    random.Random(5).shuffle(lines)
    out.write_text("".join(lines))
    return len(lines)


def to_parquet(jsonl: Path, out: Path) -> None:
    """The same records as Parquet, as ``forge analyze JSONL --save-table OUT`` writes them."""
    from provision.analyze.table import read_table, write_table

    write_table(out, read_table(jsonl, strict=True))


HISTORY_METRICS = [("gpu_temperature", "C", 45.0), ("gpu_memory_temperature", "C", 50.0),
                   ("gpu_power", "W", 120.0), ("gpu_sm_clock", "MHz", 1755.0),
                   ("ecc_corrected_volatile", "count", 0.0),
                   ("ecc_uncorrected_volatile", "count", 0.0),
                   ("remapped_rows_pending", "count", 0.0), ("pcie_link_width", "lanes", 16.0),
                   ("pcie_link_gen", "gen", 5.0), ("xid_events", "count", 0.0)]


def sweeps(nodes: int, count: int, now: float) -> list[tuple[float, list[Any]]]:
    """One sweep every 15 minutes ending now: nodes x 8 GPUs x 10 metrics each."""
    from provision.measurement import Measurement

    rng = random.Random(5)
    uuids = {(n, g): f"GPU-{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-"
             f"{rng.getrandbits(16):04x}-{rng.getrandbits(16):04x}-{rng.getrandbits(48):012x}"
             for n in range(nodes) for g in range(8)}
    out = []
    for s in range(count):
        ts = now - (count - 1 - s) * 900
        out.append((ts, [Measurement(node=f"gpu{n + 1:04d}", metric=m, gpu=g, unit=unit,
                                     value=base + rng.random() if base else 0.0, check="sweep",
                                     uuid=uuids[(n, g)], serial=f"16523{n:05d}{g}")
                         for n in range(nodes) for g in range(8)
                         for m, unit, base in HISTORY_METRICS]))
    return out


def build_history(db: Path, nodes: int, count: int) -> tuple[int, float]:
    """Readings written and CPU seconds inside ``HistoryStore.record()``."""
    from provision.history.store import HistoryStore, RunInfo

    total, cpu = 0, 0.0
    with HistoryStore(db) as store:
        for s, (ts, recs) in enumerate(sweeps(nodes, count, time.time())):
            c = time.process_time()
            total += store.record(RunInfo(f"sweep-{s:05d}", ts, kind="sweep", origin="bench",
                                          finished=ts + 20, status="ok"), recs)
            cpu += time.process_time() - c
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return total, cpu


def old_schema_bytes_per_reading(db: Path, nodes: int, count: int) -> float:
    """The same readings in the earlier schema (one wide row, three indexes), bytes each."""
    from provision.history import schema

    c = sqlite3.connect(db)
    for m in schema.MIGRATIONS[:2]:
        for stmt in m.statements:
            c.execute(stmt)
    n = 0
    for s, (ts, recs) in enumerate(sweeps(nodes, count, time.time())):
        c.executemany("INSERT INTO samples (run_id, ts, node, gpu, serial, uuid, metric, value, "
                      "unit, check_name, detail) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                      [(f"sweep-{s:05d}", ts, r.node, r.gpu, r.serial, r.uuid, r.metric,
                        r.value, r.unit, r.check, r.detail) for r in recs])
        n += len(recs)
        c.commit()
    c.execute("VACUUM")
    c.close()
    return db.stat().st_size / n


# --- the figures -------------------------------------------------------------------------

def bench_analyze(work: Path, nodes: int, pairs: int) -> list[Row]:
    jsonl, parquet = work / f"fleet{nodes}.jsonl", work / f"fleet{nodes}.parquet"
    if not jsonl.exists():
        n = gen_fleet(nodes, jsonl)
        print(f"generated {jsonl}: {n:,} records, {jsonl.stat().st_size / 1e6:.0f} MB", flush=True)
    if not parquet.exists():
        to_parquet(jsonl, parquet)
    records = f"{nodes * 8 * 40 / 1e6:g}M records"
    print(f"{records}: JSONL {jsonl.stat().st_size / 1e6:.0f} MB, Parquet "
          f"{parquet.stat().st_size / 1e6:.0f} MB; JSONL, Parquet and the baseline in turn",
          flush=True)
    runs = rotated({"jsonl": [FORGE, "analyze", str(jsonl), "--json"],
                    "parquet": [FORGE, "analyze", str(parquet), "--json"],
                    "base": [PY, str(HERE / "baselines" / "analyze_naive.py"), str(jsonl)]},
                   pairs)

    def small(r: Row) -> bool:
        return r.med(r.a, "wall") < 3.0 and r.med(r.a, "rss_mib") < 1536

    rows = [Row(f"analyze --json, {records}, {kind}", runs[key], runs["base"],
                "< 3 s, < 1.5 GiB", small) for key, kind in (("jsonl", "JSONL"),
                                                            ("parquet", "Parquet"))]
    for row in rows:
        print(row.line(), flush=True)
    return rows


def bench_history(work: Path, nodes: int, count: int, pairs: int) -> list[Row]:
    db = work / f"history{nodes}x{count}.db"
    if not db.exists():
        total, cpu = build_history(db, nodes, count)
        print(f"history: {total:,} readings written at {total / cpu:,.0f} readings/s of "
              f"record() CPU; 10,000 nodes x 80 readings every 15 min need "
              f"{NEEDED_PER_DAY / 86400:,.0f}/s on average ({NEEDED_PER_DAY / 1e6:.1f}M a day, "
              f"{10_000 * 80:,} readings a sweep)", flush=True)
    with sqlite3.connect(db) as c:
        readings = c.execute("SELECT COUNT(*) FROM readings").fetchone()[0]
    per = db.stat().st_size / readings
    old_db = work / f"history-old{nodes}x{min(count, 100)}.db"
    if not old_db.exists():
        old = old_schema_bytes_per_reading(old_db, nodes, min(count, 100))
    else:
        old = old_db.stat().st_size / (nodes * 80 * min(count, 100))
    print(f"history store: {per:.0f} bytes a reading; the earlier schema {old:.0f} "
          f"(same readings, {min(count, 100)} sweeps): {old / per:.1f}x smaller "
          f"(target >= 3x) {'holds' if old / per >= 3 else 'MISSES'}", flush=True)

    # the window ends at the store's newest reading, not now: a store built earlier gives the
    # same rows whenever it is measured
    with sqlite3.connect(db) as c:
        newest_ms = c.execute("SELECT MAX(ts) FROM readings").fetchone()[0]
    since_s = newest_ms // 1000 - 3 * 86400
    since_iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since_s))
    query = ("FROM readings r JOIN series s ON s.id = r.series WHERE r.metric = (SELECT id "
             f"FROM names WHERE name = 'gpu_temperature') AND r.ts >= {since_s * 1000}")
    with sqlite3.connect(db) as c:
        rows = c.execute(f"SELECT COUNT(*) {query}").fetchone()[0]
    print(f"history query: {rows:,} rows, since {since_iso} (3 days before the newest reading)",
          flush=True)
    forge = [FORGE, "history", "--metric", "gpu_temperature", "--since", since_iso, "--db",
             str(db)]
    cpus = str(len(os.sched_getaffinity(0)))
    runs = rotated({"forge": forge,
                    "blas": ["env", f"OPENBLAS_NUM_THREADS={cpus}", *forge],
                    "sqlite": ["sqlite3", str(db),
                               f"SELECT r.ts, s.node, s.gpu, r.value {query} ORDER BY r.ts"]},
                   pairs)
    out = [Row("history --metric gpu_temperature --since 3d, fleet", runs["forge"],
               runs["sqlite"], "<= 1.5x", lambda r: r.ratio <= 1.5),
           Row(f"  the same, OPENBLAS_NUM_THREADS={cpus} (one per CPU)", runs["blas"],
               runs["sqlite"], "(forge before)", lambda r: r.ratio <= 1.5)]
    for row in out:
        print(row.line(), flush=True)
    return out


def bench_render(work: Path, nodes: int, pairs: int) -> list[Row]:
    from render_bench import spec_text

    spec = work / f"nodes{nodes}.yaml"
    spec.write_text(spec_text(nodes))
    out = work / "rendered"
    base = [PY, str(HERE / "baselines" / "render_naive.py"), str(spec)]

    def fresh(prefix: str) -> str:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        return tempfile.mktemp(prefix=prefix, dir=out)

    rows = [paired(f"validate, {nodes:,} nodes", [FORGE, "validate", str(spec)],
                   [*base, "--validate-only"], pairs, "<= 1.5x", lambda r: r.ratio <= 1.5),
            paired(f"render -o DIR, {nodes:,} nodes",
                   lambda: [FORGE, "render", str(spec), "-o", fresh("f.")],
                   lambda: [*base, fresh("b.")], pairs, "<= 1.5x", lambda r: r.ratio <= 1.5),
            # the same flush on both sides: os.sync() leaves its write-back to kernel threads,
            # outside the baseline's CPU time, and flushes every file system of the machine
            paired(f"render, {nodes:,} nodes, baseline fsyncs",
                   lambda: [FORGE, "render", str(spec), "-o", fresh("f.")],
                   lambda: [*base, fresh("b."), "--fsync"], pairs, "<= 1.5x",
                   lambda r: r.ratio <= 1.5)]
    shutil.rmtree(out, ignore_errors=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes: a few minutes")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--work", type=Path, help="keep generated inputs here (reused next time)")
    ap.add_argument("--only", choices=("analyze", "history", "render"), action="append")
    ap.add_argument("--nodes", type=int, help="spec size of the render figures (default 50,000)")
    args = ap.parse_args()
    if not shutil.which("sqlite3") or not Path(TIME).exists():
        raise SystemExit("needs the sqlite3 shell (history baseline) and GNU time "
                         "(/usr/bin/time: Debian package 'time')")
    work = args.work or Path(tempfile.mkdtemp(prefix="forge-fleet-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    only = set(args.only or ("analyze", "history", "render"))
    sizes = ((1_600, 64, 300, 10_000) if args.quick else (12_500, 256, 489, 50_000))
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {args.pairs} pairs, "
          "medians; CPU = user + sys of the child; ratio = median of per-pair CPU ratios")
    print(f"{'measure':<44} {'forge: CPU s':>12} {'wall':>7} {'MiB':>7} | "
          f"{'baseline: CPU':>13} {'wall':>7} {'MiB':>7} | ratio  target")
    try:
        if "analyze" in only:
            bench_analyze(work, sizes[0], args.pairs)
        if "history" in only:
            bench_history(work, sizes[1], sizes[2], args.pairs)
        if "render" in only:
            bench_render(work, args.nodes or sizes[3], args.pairs)
    finally:
        print(f"load average {os.getloadavg()[0]:.1f} at the end", flush=True)
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

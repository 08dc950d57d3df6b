"""Benchmark of ``forge ingest auto`` on a 50 MB nccl-tests log, beside a naive regex reader.

    .venv/bin/python benchmarks/ingest_bench.py              # 50 MB, 3 alternating pairs
    .venv/bin/python benchmarks/ingest_bench.py --mb 10 --pairs 5
    .venv/bin/python benchmarks/ingest_bench.py --one-cpu   # also forge in one process
    .venv/bin/python benchmarks/ingest_bench.py --files     # one file per sample (18,672)

The log is the six real table-bearing nccl-tests outputs of the shared fixtures
(CSCS GH200 2-node, GCM A100 1- and 2-node, three OCI BM.GPU4.8) concatenated
until it reaches the size: thousands of runs, as a job that runs ``*_perf``
binaries one after another writes them. With ``--files``, the same samples are written
one per file instead, as a directory of per-job logs holds them, and both sides read
every file (``DIR/*.txt`` on their command lines). Both sides run as fresh processes,
A then B then A ... (with ``--one-cpu``: A, B, A1, A, ...), and the medians are
printed with their ratio (wall time, CPU seconds of the process and the readers
it forks, and the largest peak RSS of any one of them):

- A: ``forge ingest auto LOG -o OUT`` (every run found, every record written);
- B: a naive reader: one regex per line for the result rows and one JSON line per
  out-of-place/in-place bus bandwidth (a floor: no headers, no ranks, no runs,
  no failures);
- A1 (``--one-cpu``): A held to one CPU, so it reads the log in one process.

Prints, never asserts: figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL = Path(os.environ.get("FORGE_REAL_FIXTURES", ROOT.parent / "shared" / "fixtures" / "real"))
SAMPLES = ("cscs-gh200-2node-8gpu-v2.17.1-no-ofi-plugin-slow.txt",
           "gcm-a100-sxm4-80gb-1node-8gpu-nccl2.16.2-hostname-placeholder.txt",
           "gcm-a100-sxm4-80gb-2node-16gpu-nccl2.12.12-hostname-placeholder.txt",
           "oci-bm-gpu4.8-a100-1node-8gpu-10G.txt",
           "oci-bm-gpu4.8-a100-2node-16gpu-10G-docker-older.txt",
           "oci-bm-gpu4.8-a100-2node-16gpu-10G-ubuntu.txt")

NAIVE = r'''
import json, re, sys
ROW = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\w+)\s+(\w+)\s+(?:-?\d+\s+)?([\d.]+)\s+([\d.]+)\s+"
                 r"([\d.]+)\s+\S+\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)")
with open(sys.argv[-1], "w") as out:
    for path in sys.argv[1:-1]:
        with open(path) as f:
            for line in f:
                m = ROW.match(line)
                if m:
                    size = int(m[1])
                    out.write(json.dumps({"metric": "nccl_busbw", "size": size,
                                          "value": float(m[7])}))
                    out.write("\n")
                    out.write(json.dumps({"metric": "nccl_busbw", "size": size,
                                          "value": float(m[10]), "place": "in"}))
                    out.write("\n")
'''


def build_log(path: Path, megabytes: float) -> int:
    one = "".join(_samples())
    target = int(megabytes * 1_000_000)
    path.write_text(one * (target // len(one) + 1), encoding="utf-8")
    return path.stat().st_size


def build_files(folder: Path, megabytes: float) -> list[Path]:
    """The samples one per file, in turn, until they hold as many bytes as the log."""
    samples = _samples()
    target = int(megabytes * 1_000_000)
    folder.mkdir()
    files: list[Path] = []
    size = 0
    while size < target:
        text = samples[len(files) % len(samples)]
        files.append(folder / f"job{len(files):06d}.txt")
        files[-1].write_text(text, encoding="utf-8")
        size += len(text)
    return files


def _samples() -> list[str]:
    return [(REAL / "nccl-tests" / s).read_text(encoding="utf-8").rstrip("\n") + "\n"
            for s in SAMPLES]


def timed(argv: list[str], cpus: set[int] | None = None) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS in MiB) of one run, its forked readers
    included (CPU time is what a loaded machine does not inflate); on ``cpus`` only when
    given. The wall time ends when the command exits; a forked reader it left exiting is
    reaped here (this process is their subreaper) and its CPU time and RSS counted."""
    pin = None if cpus is None else (lambda: os.sched_setaffinity(0, cpus))
    os.sync()  # the run before it wrote its output: not flushed while this one runs
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=pin)  # this process has no threads
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, argv)
    cpu, rss = usage.ru_utime + usage.ru_stime, usage.ru_maxrss
    while True:  # orphans of the command, reparented here
        try:
            _, _, orphan = os.wait4(-1, 0)
        except ChildProcessError:
            break
        cpu += orphan.ru_utime + orphan.ru_stime
        rss = max(rss, orphan.ru_maxrss)
    return wall, cpu, rss / 1024


def _reap_orphans_here() -> None:
    """Make this process the subreaper of the commands it runs (Linux ``prctl``), so that a
    process a command forked and left exiting is counted, not lost to init."""
    import ctypes

    pr_set_child_subreaper = 36
    if ctypes.CDLL(None, use_errno=True).prctl(pr_set_child_subreaper, 1) != 0:
        sys.exit("cannot become a subreaper (prctl PR_SET_CHILD_SUBREAPER)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=50.0, help="log size in MB (default 50)")
    ap.add_argument("--pairs", type=int, default=3, help="A/B pairs (default 3)")
    ap.add_argument("--one-cpu", action="store_true",
                    help="also run forge held to one CPU (A1: it then reads in one process)")
    ap.add_argument("--files", action="store_true",
                    help="the samples one per file (a directory of job logs), not one log")
    args = ap.parse_args()
    if not (REAL / "nccl-tests").is_dir():
        sys.exit(f"no real fixtures at {REAL} (set FORGE_REAL_FIXTURES)")
    forge = str(Path(sys.executable).with_name("forge"))
    _reap_orphans_here()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        log, out_a, out_b = Path(tmp, "nccl.log"), Path(tmp, "a.jsonl"), Path(tmp, "b.jsonl")
        naive = Path(tmp, "naive.py")
        naive.write_text(NAIVE, encoding="utf-8")
        if args.files:
            inputs = [str(f) for f in build_files(Path(tmp, "jobs"), args.mb)]
            size = sum(Path(f).stat().st_size for f in inputs)
        else:
            size = build_log(log, args.mb)
            inputs = [str(log)]
        a_argv = [forge, "ingest", "auto", *inputs, "-o", str(out_a), "--force"]
        b_argv = [sys.executable, str(naive), *inputs, str(out_b)]
        a_times, b_times, one_times = [], [], []
        one = {min(os.sched_getaffinity(0))}
        for _ in range(args.pairs):
            a_times.append(timed(a_argv))
            b_times.append(timed(b_argv))
            if args.one_cpu:
                one_times.append(timed(a_argv, one))
        a, b = statistics.median(t[0] for t in a_times), statistics.median(t[0] for t in b_times)
        a_cpu = statistics.median(t[1] for t in a_times)
        b_cpu = statistics.median(t[1] for t in b_times)
        a_rss = max(t[2] for t in a_times)
        b_rss = max(t[2] for t in b_times)
        n_a = sum(1 for _ in out_a.open(encoding="utf-8"))
        n_b = sum(1 for _ in out_b.open(encoding="utf-8"))
        runs = sum(Path(f).read_text(encoding="utf-8").count("# nThread") for f in inputs)
    mb = size / 1e6
    what = f"in {len(inputs)} files" if args.files else "log"
    print(f"input: {mb:.1f} MB nccl-tests {what}, {runs} runs; {args.pairs} alternating pairs,"
          " medians")
    print(f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on"
          f" {len(os.sched_getaffinity(0))} CPUs this process may use")
    print(f"{'side':36s} {'wall s':>7s} {'MB/s':>6s} {'CPU s':>7s} {'MB/CPU s':>9s}"
          f" {'peak MiB':>9s} {'records':>9s}")
    print(f"{'A forge ingest auto':36s} {a:7.2f} {mb / a:6.1f} {a_cpu:7.2f} {mb / a_cpu:9.1f}"
          f" {a_rss:9.0f} {n_a:9d}")
    if one_times:
        w1, c1 = (statistics.median(t[k] for t in one_times) for k in (0, 1))
        print(f"{'A1 forge ingest auto, one CPU':36s} {w1:7.2f} {mb / w1:6.1f} {c1:7.2f}"
              f" {mb / c1:9.1f} {max(t[2] for t in one_times):9.0f} {n_a:9d}")
    print(f"{'B naive regex reader (rows only)':36s} {b:7.2f} {mb / b:6.1f} {b_cpu:7.2f}"
          f" {mb / b_cpu:9.1f} {b_rss:9.0f} {n_b:9d}")
    print(f"forge / naive: wall {a / b:.2f}, CPU {a_cpu / b_cpu:.2f}"
          "   bar: >= 50 MB/s: " + ("MET" if mb / a >= 50 else "MISSED"))


if __name__ == "__main__":
    main()

"""CLI start-up: CPU seconds of `forge --help`, `forge validate` of the small example and
forge-health (`--help`, and a whole health check from the config `forge sweep install`
writes: on a machine without nvidia-smi it reports the GPU probe failed, exit 1), beside
`python -c 'import click'` (the floor any click CLI pays).

Targets: forge --help < 0.1 s, forge validate small < 0.15 s (CPU, median).
Run: .venv/bin/python benchmarks/startup_bench.py [--rounds 21] [--against OTHER/bin/forge]
(``--against``: another install's forge, e.g. of the previous release, timed in the same
rounds, so the two compare on the same load.)
One alternating run: every round runs each command once, in turn, so a busy machine
slows all of them alike; each figure is the median over rounds of the child's user+sys
CPU time (wall time is shown too, but on a shared machine it measures the neighbours).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "site-specs" / "small.yaml"
PY = sys.executable
_SCRIPT = Path(PY).with_name("forge")
FORGE = [str(_SCRIPT)] if _SCRIPT.exists() else [PY, "-m", "provision"]

COMMANDS: dict[str, tuple[list[str], float | None]] = {
    "python -c 'import click' (peer)": ([PY, "-c", "import click"], None),
    "forge --help": ([*FORGE, "--help"], 0.10),
    "forge validate small.yaml": ([*FORGE, "validate", str(SMALL)], 0.15),
    "forge-health --help": ([PY, "-m", "provision.node_programs.health", "--help"], None),
}


def add_health_run(work: Path) -> None:
    """forge-health as slurmd runs it: the config of the small example, a history store."""
    subprocess.run([*FORGE, "sweep", "install", str(SMALL), "--cron", "--root", str(work)],
                   stdout=subprocess.DEVNULL, check=True)
    COMMANDS["forge-health (one health check)"] = (
        [PY, "-m", "provision.node_programs.health", "--config", str(work / "etc/forge/sweep.json"),
         "--node", "gpu001", "--db", str(work / "history.db")], None)


def _once(argv: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, check=False)
    if done.returncode not in (0, 1):  # 1: forge-health found the GPU probe failed
        raise SystemExit(f"{argv[:3]}... exited {done.returncode}")
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--against", metavar="FORGE",
                    help="another forge program, timed beside this one in every round")
    args = ap.parse_args()
    rounds = args.rounds
    if args.against:
        COMMANDS["other: forge --help"] = ([args.against, "--help"], None)
        COMMANDS["other: forge validate small.yaml"] = ([args.against, "validate", str(SMALL)],
                                                        None)
    work = tempfile.TemporaryDirectory(prefix="forge-startup-")
    add_health_run(Path(work.name))
    for argv, _ in COMMANDS.values():  # warm the page cache and .pyc files
        _once(argv)
    cpu: dict[str, list[float]] = {k: [] for k in COMMANDS}
    wall: dict[str, list[float]] = {k: [] for k in COMMANDS}
    for _ in range(rounds):
        for name, (argv, _) in COMMANDS.items():
            c, w = _once(argv)
            cpu[name].append(c)
            wall[name].append(w)
    peer = statistics.median(cpu["python -c 'import click' (peer)"])
    print(f"{'command':34} {'CPU s':>7} {'wall s':>7} {'x peer':>7}  target")
    for name, (_, target) in COMMANDS.items():
        c, w = statistics.median(cpu[name]), statistics.median(wall[name])
        verdict = "" if target is None else f"< {target:.2f} s {'ok' if c < target else 'MISSED'}"
        print(f"{name:34} {c:7.3f} {w:7.3f} {c / peer:7.1f}  {verdict}")
    print(f"(medians of {rounds} alternating rounds; CPU = the child's user + sys time, "
          f"its own children included; load average {os.getloadavg()[0]:.1f})")
    work.cleanup()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""How far one control host goes: `forge deploy` on N SSH endpoints, time and controller memory.

Starts N real sshd processes on 127.0.0.1 (each one a "node": the modules run
on this machine, as the endpoint's user), writes a site spec for them, and runs
a playbook of ten typical tasks (control_host_playbook.yml: file, copy,
lineinfile, command, stat, assert, a loop, shell, set_fact) through forge's driver, once to
converge and then as a no-change rerun, with ``--ansible-settings forge``
(Mitogen) and ``forge-ssh``. While each run goes, it samples the proportional
set size (PSS, so pages shared between forks count once) of the controller:
this process (forge's driver runs in it) and every process it started:
ansible-playbook, its forks, the ssh clients and Mitogen's multiplexer; and
their CPU time (getrusage of this process and of the waited children, less the
sampler thread's own CPU time spent walking /proc). The sshd
endpoints are started outside this process's tree (``start_sshds``), so the
sshd sessions, the modules and Mitogen's per-node interpreters, which live on
the nodes in a real cluster, are in neither figure. Not counted either: SSH
ControlPersist masters (forge-ssh), which detach and are never waited for, so
the ssh path's CPU is understated.

On a small machine the endpoints' modules share the CPUs with the controller,
so the wall times are an upper bound; the controller's CPU seconds per host
and task and its memory per fork are what scale to a real cluster. With two or
more sizes it also prints what each node past the smallest adds (the
difference of the two reruns), which leaves out the fixed cost of the driver
and ansible-playbook's own interpreter that peak / nodes spreads over the nodes.

    .venv/bin/python benchmarks/control_host_bench.py [--nodes 10 40] [--port-base 25000]
"""

from __future__ import annotations

import argparse
import getpass
import os
import resource
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from fanout_bench import free, load_average, start_sshds, stop_sshds  # noqa: E402

from provision.deploy.driver import DeployOptions, deploy  # noqa: E402
from provision.deploy.settings import Profile  # noqa: E402
from provision.errors import ExitCode  # noqa: E402

PLAYBOOK = Path(__file__).with_name("control_host_playbook.yml")
TASKS = 10


def process_tree_pss_kib(root: int) -> int:
    """Sum of PSS over root and all its descendants (from /proc)."""
    return sum(_pss_kib(pid) for pid in descendants(root, include_root=True))


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(root: int, *, include_root: bool = False) -> list[int]:
    """``root``'s descendants (and ``root``), from the parent links in /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, stack = [root] if include_root else [], list(children.get(root, []))
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(children.get(pid, []))
    return out


class PeakSampler:
    """Samples the controller's PSS every 0.25 s from a thread of this process.

    Walking /proc costs CPU in this process, which the controller's CPU figure counts:
    ``cpu_s`` is the sampler thread's own CPU time, for the caller to take off.
    """

    def __init__(self) -> None:
        self.peak_kib = 0
        self.cpu_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, process_tree_pss_kib(os.getpid()))
            self.cpu_s = time.thread_time()
            self._stop.wait(0.25)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def write_spec(d: Path, ports: list[int]) -> Path:
    spec = d / "bench.yaml"
    spec.write_text(f"""spec_version: 1
cluster: {{name: ctlbench, domain: bench.internal}}
access: {{user: {getpass.getuser()}, ssh_key: {d / 'client'}, known_hosts: {d / 'known_hosts'}}}
networks: {{management: {{subnet: 10.98.0.0/16}}, fabric: {{type: none}}}}
node_groups:
  - name: ctl
    nodes: b000
    roles: [controller]
    profile: lab-container
    rack: r1
    addresses: {{management: 10.98.0.10, ssh: "127.0.0.1:{ports[0]}"}}
  - name: nodes
    nodes: b[001-{len(ports) - 1:03d}]
    roles: [compute]
    profile: lab-container
    rack: r1
    addresses: {{management: 10.98.0.11, ssh: "127.0.0.1:{ports[1]}"}}
stack: {{scheduler: slurm}}
""")
    return spec


@dataclass(frozen=True)
class Measured:
    seconds: float
    changed: int
    controller_cpu_s: float
    peak_pss_kib: int


def controller_cpu_s() -> float:
    """CPU seconds of this process (forge's driver) and of its waited-for children."""
    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def run(spec: Path, playbook: Path, runs: Path, profile: Profile, bench_dir: Path) -> Measured:
    cpu_before = controller_cpu_s()
    with PeakSampler() as sampler:
        res = deploy(DeployOptions(spec=spec, playbook=playbook, runs_root=runs, profile=profile,
                                   extravars={"bench_dir": str(bench_dir)}))
    if res.exit_code != ExitCode.OK:  # the run directory goes with the endpoints: say why here
        bad = [r for r in res.results if r.outcome not in ("ok", "changed")]
        why = "; ".join(f"{r.host} {r.outcome}: {r.failure.task}: {r.failure.message[:200]}"
                        if r.failure else f"{r.host} {r.outcome}" for r in bad[:3])
        raise SystemExit(f"{profile}: run failed (ansible rc {res.ansible_rc}, {len(bad)} of "
                         f"{len(res.results)} hosts not ok): {why}")
    return Measured(res.seconds, res.changed, controller_cpu_s() - cpu_before - sampler.cpu_s,
                    sampler.peak_kib)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, nargs="+", default=[10, 40])
    ap.add_argument("--port-base", type=int, default=25000)
    args = ap.parse_args()
    profiles: tuple[Profile, ...] = ("forge", "forge-ssh")
    print(f"no-change rerun of {TASKS} tasks (facts from the cache), {os.cpu_count()} CPUs; "
          "controller = forge's driver, ansible-playbook and all it started (not the endpoints)")
    print(f"load average at start {load_average()}", flush=True)
    print(f"{'nodes':>5} {'settings':<10} {'converge s':>10} {'rerun s':>8} "
          f"{'ctl CPU s':>9} {'ms/host/task':>12} {'peak MiB':>9} {'MiB/node':>8}")
    reruns: dict[tuple[Profile, int], Measured] = {}
    for n in args.nodes:
        ports = [args.port_base + i for i in range(n)]
        if any(not free(p) for p in ports):
            raise SystemExit("ports in use; pass --port-base")
        d = Path(tempfile.mkdtemp(prefix="forge-ctl-bench-"))
        procs = start_sshds(d, ports)
        try:
            spec = write_spec(d, ports)
            playbook = PLAYBOOK
            for profile in profiles:
                out = d / f"out-{profile}"
                out.mkdir()
                first = run(spec, playbook, d / f"runs-{profile}", profile, out)
                again = run(spec, playbook, d / f"runs-{profile}", profile, out)
                if again.changed:
                    raise SystemExit(f"{profile}: the rerun changed {again.changed} things")
                reruns[profile, n] = again
                per_host_task_ms = again.controller_cpu_s / (n * TASKS) * 1000
                mib = again.peak_pss_kib / 1024
                print(f"{n:>5} {profile:<10} {first.seconds:>10.1f} {again.seconds:>8.1f} "
                      f"{again.controller_cpu_s:>9.1f} {per_host_task_ms:>12.0f} "
                      f"{mib:>9.0f} {mib / n:>8.1f}  load {load_average()}", flush=True)
        finally:
            stop_sshds(procs, d)
    print_marginal(reruns, min(args.nodes), max(args.nodes), profiles)
    return 0


def print_marginal(reruns: dict[tuple[Profile, int], Measured], lo: int, hi: int,
                   profiles: tuple[Profile, ...]) -> None:
    """What each node past ``lo`` adds: the per-node figure without the fixed part.

    Peak PSS / nodes counts the driver and ansible-playbook's own interpreter (a fixed
    cost) once per node, which overstates small runs; the difference between two sizes
    leaves it out and is the figure to scale from.
    """
    if hi == lo:
        return
    print(f"added by each node from {lo} to {hi} nodes:")
    for profile in profiles:
        a, b = reruns[profile, lo], reruns[profile, hi]
        ms = (b.controller_cpu_s - a.controller_cpu_s) / ((hi - lo) * TASKS) * 1000
        mib = (b.peak_pss_kib - a.peak_pss_kib) / 1024 / (hi - lo)
        print(f"  {profile:<10} {ms:6.0f} ms CPU per host and task, {mib:5.1f} MiB peak PSS")


if __name__ == "__main__":
    sys.exit(main())

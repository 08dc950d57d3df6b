"""No-change rerun of the Slurm stack on a lab: forge's Ansible settings vs the defaults.

Brings up its own lab (names forge-b-n*, SSH ports 2361 and up, its own
subnet) of 8 nodes by default: more hosts than Ansible's default of 5 forks, so
the fork setting forge derives from the host count takes part (at 3 nodes the
defaults already run every host at once). Converges it once, then times no-change
reruns of playbooks/site.yml with each settings profile (forge: tuned + Mitogen;
forge-ssh: the same tuning over Ansible's ssh connection; defaults: Ansible's
own), the profile order rotated every round so none always runs first or
last, and prints them side by side with both ratios: forge-ssh vs defaults is
the tuning and the fact cache alone, forge vs forge-ssh adds Mitogen; also
the ratio within each round, whose runs saw about the same load, and the
median of those, the steadier figure when the machine's load drifts. Goal:
forge's settings at least 1.5x faster than the defaults. Every timed run must
report zero changes, or its time means nothing. Beside each wall time it prints
the controller's CPU seconds (this process, where forge's driver runs, and the
ansible-playbook it waits for; not the nodes, which are containers outside this
process's tree) and the load average, since on a small shared machine the
nodes' work competes with the controller for the same CPUs. SSH ControlPersist
masters (forge-ssh, defaults) detach and are never waited for, so the ssh
paths' CPU is understated.

    .venv/bin/python benchmarks/deploy_bench.py [--nodes 8] [--rounds 3] [--keep]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from control_host_bench import controller_cpu_s
from fanout_bench import load_average

from provision.deploy.driver import DeployOptions, deploy
from provision.deploy.settings import PROFILES
from provision.errors import ExitCode
from provision.lab import lab
from provision.lab.config import LabConfig
from provision.paths import site_playbook

GOAL = 1.5


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--nodes", type=int, default=8,
                    help="lab nodes (default 8: more than Ansible's default 5 forks)")
    ap.add_argument("--keep", action="store_true", help="leave the bench lab running")
    ap.add_argument("--playbook", type=Path, default=site_playbook(),
                    help="default: playbooks/site.yml (the Slurm stack on a lab site)")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="forge-deploy-bench-"))
    cfg = LabConfig(state_dir=work / "lab", prefix="forge-b-n", nodes=args.nodes,
                    ssh_port_base=2360,
                    subnet="10.89.63.0/24", network="forge-b-net")
    info = lab.up(cfg, log=lambda m: print(f"lab: {m}", file=sys.stderr))
    spec = Path(info.spec)
    try:
        first = deploy(DeployOptions(spec=spec, runs_root=work / "runs", playbook=args.playbook))
        if first.exit_code != ExitCode.OK:
            print(f"converge failed: see {first.run_dir}", file=sys.stderr)
            return 3
        print(f"converge (forge settings): {first.seconds:.1f} s, {first.changed} changes; "
              f"load average {load_average()}", flush=True)
        times: dict[str, list[float]] = {p: [] for p in PROFILES}
        cpu: dict[str, list[float]] = {p: [] for p in PROFILES}
        order = list(PROFILES)
        for _ in range(args.rounds):
            order = order[1:] + order[:1]  # rotate: each profile takes each place in turn
            for profile in order:
                cpu_before = controller_cpu_s()
                r = deploy(DeployOptions(spec=spec, runs_root=work / "runs", profile=profile,
                                         playbook=args.playbook))
                if r.exit_code != ExitCode.OK or r.changed:
                    print(f"{profile}: rerun not clean ({r.changed} changes, exit "
                          f"{int(r.exit_code)}): {r.run_dir}", file=sys.stderr)
                    return 1
                times[profile].append(r.seconds)
                cpu[profile].append(controller_cpu_s() - cpu_before)
        medians = {p: statistics.median(t) for p, t in times.items()}
        print(f"\nno-change rerun of {args.playbook.name} on {cfg.nodes} lab nodes, "
              f"{args.rounds} rounds, order rotated each round; load average "
              f"{load_average()}")
        print(f"{'settings':<10} {'median s':>9} {'min s':>7} {'max s':>7} {'ctl CPU s':>9}  runs")
        for profile in PROFILES:
            t = times[profile]
            print(f"{profile:<10} {statistics.median(t):>9.2f} {min(t):>7.2f} {max(t):>7.2f} "
                  f"{statistics.median(cpu[profile]):>9.2f}  "
                  + " ".join(f"{x:.2f}" for x in t))
        for profile in PROFILES[:-1]:
            per_round = [d / t for d, t in zip(times["defaults"], times[profile], strict=True)]
            print(f"speedup of {profile} (defaults median / {profile} median): "
                  f"{medians['defaults'] / medians[profile]:.2f}x; per round (same load): "
                  + " ".join(f"{x:.2f}" for x in per_round)
                  + f", median {statistics.median(per_round):.2f}x")
        speedup = medians["defaults"] / medians["forge"]
        verdict = "meets" if speedup >= GOAL else "MISSES"
        print(f"forge's default settings: {speedup:.2f}x; {verdict} the {GOAL}x goal")
        return 0
    finally:
        if not args.keep:
            lab.down(cfg)


if __name__ == "__main__":
    sys.exit(main())

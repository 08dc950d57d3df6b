"""``forge-health``: the node-local check in NHC's conventions (Slurm HealthCheckProgram).

Quiet and fast: only the Python standard library and forge's own pure
modules are imported (no spec parsing: the expectations come compiled in
``/etc/forge/sweep.json`` by ``forge sweep install``). It prints one line
(``OK`` or ``ERROR: <reason>``) and exits 0 healthy, 1 failing, 2 bad
configuration. With ``--drain`` it drains/resumes this node itself through
``scontrol`` under forge's policy, keeping its streak counters in a local
history store.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from pathlib import Path

DEFAULT_CONFIG = "/etc/forge/sweep.json"
DEFAULT_DB = "/var/lib/forge/health.db"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="forge-health", description=__doc__.splitlines()[0],
        epilog="example: forge-health --profile quick --drain   (exit codes: docs/exit-codes.md)")
    ap.add_argument("--config", default=DEFAULT_CONFIG)
    ap.add_argument("--node", default=socket.gethostname().split(".")[0])
    ap.add_argument("--profile", default="quick", choices=("quick", "full"))
    ap.add_argument("--drain", action="store_true")
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--db", default=DEFAULT_DB)
    ap.add_argument("--fail-after", type=int, default=3)
    ap.add_argument("--resume-after", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--scheduler", default="slurm", choices=("slurm", "kubernetes"),
                    help="where --drain acts: scontrol here, or this node through the API")
    args = ap.parse_args(argv)

    from provision.actions.policy import PolicyConfig
    from provision.errors import ForgeError
    from provision.sweep import report
    from provision.sweep.expect import load_config
    from provision.sweep.run import SweepOptions, local_sweep

    try:
        exp = load_config(Path(args.config), args.node)
        opts = SweepOptions(profile=args.profile, drain=args.drain, dry_run=args.dry_run,
                            db=Path(args.db), policy=PolicyConfig(args.fail_after,
                                                                  args.resume_after))
        scheduler = None
        if args.scheduler == "kubernetes" and (args.drain or args.dry_run):
            from provision.actions.kubernetes import KubernetesScheduler
            from provision.sweep.run import kube_api

            scheduler = KubernetesScheduler(kube_api())
        result = local_sweep(exp, opts, scheduler)
    except ForgeError as exc:
        print(f"ERROR: forge-health: {exc.message}")
        return int(exc.exit_code)
    if args.json:
        print(json.dumps(result.to_dict(), sort_keys=True))
    else:
        print(report.nhc_line(result.nodes[0]))
    return int(result.exit_code())


if __name__ == "__main__":
    sys.exit(main())

"""``forge-health``: the node-local check in NHC's conventions (Slurm HealthCheckProgram).

Quiet and fast: only the Python standard library and forge's own pure
modules are imported (no spec parsing: the expectations come compiled in
``/etc/forge/sweep.json`` by ``forge sweep install``). It prints one line
(``OK`` or ``ERROR: <reason>``) and exits 0 healthy, 1 failing, 2 bad
configuration. A finding that only counts toward ``--fail-after`` (not fatal,
and not the one that drains the node in this run) prints its line but exits 0:
where slurmd runs HealthCheckProgram at start-up and registers the node only
once it exits 0 (SchedMD/slurm commit b31fa177, slurm.conf(5)
HealthCheckProgram), a non-zero exit would keep a node with, say, one slow
reading out of the cluster although forge's policy would not drain it.
(Debian 13's Slurm 24.11.5 runs it at start, logs "health_check failed", and
registers anyway: checked on the lab.)
With ``--drain`` it drains/resumes this node itself through ``scontrol``
under forge's policy, keeping its streak counters in a local
history store.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from provision.errors import ExitCode
    from provision.sweep.result import SweepResult

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
            from provision.actions.kubernetes import KubernetesScheduler, kube_api

            scheduler = KubernetesScheduler(kube_api())
        result = local_sweep(exp, opts, scheduler)
    except ForgeError as exc:
        print(f"ERROR: forge-health: {exc.message}")
        return int(exc.exit_code)
    if args.json:
        print(json.dumps(result.to_dict(), sort_keys=True))
    else:
        print(report.nhc_line(result.nodes[0]))
    return int(health_exit_code(result))


def health_exit_code(result: SweepResult) -> ExitCode:
    """The sweep's exit code, except 0 for findings that only count toward --fail-after."""
    from provision.errors import ExitCode

    code = result.exit_code()
    if code != ExitCode.CHECKS_FAILED:
        return code
    fatal = any(f.fatal for n in result.nodes for f in n.findings)
    drained = any(a.get("action") == "drain" for a in result.actions)
    return code if fatal or drained else ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())

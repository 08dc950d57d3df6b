"""The lab half of `forge demo`: start the lab, deploy the Slurm stack onto it, show it working."""

from __future__ import annotations

import time
from pathlib import Path

from provision import proc
from provision.cli.output import console
from provision.errors import DeployError
from provision.lab import keys
from provision.lab import lab as labmod
from provision.lab.config import LabConfig, from_env


def sinfo_and_srun(cfg: LabConfig, timeout: float = 90) -> tuple[str, str]:
    """Wait until every lab node is idle, then run one job across all of them."""
    argv_sinfo = keys.ssh_argv(cfg.ssh_key, cfg.known_hosts, cfg.ssh_port(1), "sinfo")
    deadline = time.monotonic() + timeout
    sinfo = ""
    while time.monotonic() < deadline:
        res = proc.run(keys.ssh_argv(cfg.ssh_key, cfg.known_hosts, cfg.ssh_port(1), "sinfo",
                                     "--noheader", "--Node", "--format=%T"), timeout=30)
        states = res.stdout.split()
        if res.ok and len(states) == cfg.nodes and set(states) == {"idle"}:
            break
        time.sleep(1)
    sinfo = proc.run(argv_sinfo, timeout=30).stdout
    srun = proc.run(keys.ssh_argv(cfg.ssh_key, cfg.known_hosts, cfg.ssh_port(1), "timeout", "60",
                                  "srun", "--immediate=30", f"-N{cfg.nodes}", "hostname"),
                    timeout=90)
    if not srun.ok:
        raise DeployError(f"srun across the lab failed: {srun.stderr.strip()}")
    return sinfo, srun.stdout


def run_lab_steps(nodes: int = 3) -> None:
    """Lab up, `forge deploy` onto it, then sinfo and srun (what `forge demo` ends with)."""
    from provision.cli.deploy import raise_for, run_and_report
    from provision.deploy.driver import DeployOptions

    con = console()
    cfg = from_env(nodes=nodes)
    con.rule(f"lab: {nodes} Debian 13 systemd nodes on podman, SSH on 127.0.0.1")
    info = labmod.up(cfg, log=lambda m: con.print(m, markup=False))
    con.rule(f"deploy the Slurm stack onto the lab ({info.spec})")
    result = run_and_report(DeployOptions(spec=Path(info.spec)), spec_label=info.spec)
    raise_for(result)
    con.rule("the cluster at work: sinfo, then srun on every node")
    sinfo, hosts = sinfo_and_srun(cfg)
    con.print(sinfo.rstrip(), markup=False)
    con.print(f"$ srun -N{nodes} hostname", markup=False)
    con.print(hosts.rstrip(), markup=False)

"""The lab half of `forge demo`: show the deployed Slurm stack working on the lab.

The command (provision.cli.demo) starts the lab, deploys and prints; this module
only talks to the lab's nodes, so the lab never reaches up into the CLI.
"""

from __future__ import annotations

import time

from provision import proc
from provision.errors import DeployError
from provision.lab import keys
from provision.lab.config import LabConfig


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


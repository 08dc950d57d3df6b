"""A hand-made Slurm cluster on lab containers, for the lab tests that need real Slurm
node states without a whole deploy (the sweep's drains, the checks' verdicts)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from provision import proc
from provision.lab.config import LabConfig

#: slurm.conf lines every such cluster shares (munge, no accounting, cons_tres)
_COMMON = """AuthType=auth/munge
MpiDefault=none
SwitchType=switch/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmUser=slurm
SlurmdUser=root
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
"""

#: what each node needs before munge and the Slurm daemons start
SETUP = """set -e
mkdir -p /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm /var/lib/forge
chown -R slurm:slurm /var/lib/slurm /var/log/slurm
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
systemctl restart munge
"""


def slurm_conf(cluster: str, controller: str, node_range: str, node_fields: str,
               extra: Sequence[str] = ()) -> str:
    """slurm.conf of a one-partition cluster: ``NodeName=<node_range> <node_fields>``."""
    lines = [f"ClusterName={cluster}", f"SlurmctldHost={controller}", _COMMON.rstrip("\n"),
             *extra, f"NodeName={node_range} {node_fields} State=UNKNOWN",
             f"PartitionName=debug Nodes={node_range} Default=YES MaxTime=INFINITE State=UP"]
    return "\n".join(lines) + "\n"


def sh(node: str, script: str, timeout: float = 60) -> proc.Completed:
    return proc.run(["podman", "exec", "-i", node, "sh", "-s"], timeout=timeout,
                    input_text=script)


def must(node: str, script: str, timeout: float = 60) -> str:
    done = sh(node, script, timeout)
    assert done.ok, f"{node}: {script!r}: {done.stderr or done.stdout}"
    return done.stdout


def cp(src: Path | str, node: str, dest: str) -> None:
    done = proc.run(["podman", "cp", str(src), f"{node}:{dest}"], timeout=60)
    assert done.ok, done.stderr


def sinfo(controller: str) -> dict[str, tuple[str, str]]:
    """node -> (state, reason), as the controller's ``sinfo`` says."""
    out = must(controller, "sinfo -h -N -o '%N|%T|%E'")
    rows = [ln.split("|", 2) for ln in out.splitlines() if ln.strip()]
    return {r[0]: (r[1], r[2]) for r in rows}


def wait_for(pred: Callable[[], bool], controller: str, timeout: float = 60,
             what: str = "") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}: {sinfo(controller)}")


def start_slurm(cfg: LabConfig, nodes: Sequence[str], files: Mapping[str, str]) -> None:
    """Write ``files`` (path on the node -> text) and a fresh munge key to every node,
    start munge, slurmctld on the first node and slurmd everywhere, and wait until every
    node is idle."""
    state = Path(cfg.state_dir)
    key = state / "munge.key"
    key.write_bytes(secrets.token_bytes(1024))
    key.chmod(0o600)
    local = {}
    for dest, text in files.items():
        local[dest] = state / Path(dest).name
        local[dest].write_text(text)
    for n in nodes:
        for dest, src in local.items():
            cp(src, n, dest)
        cp(key, n, "/etc/munge/munge.key")
        must(n, SETUP)
    controller = nodes[0]
    must(controller, "systemctl start slurmctld")
    for n in nodes:
        must(n, "systemctl start slurmd")
    wait_for(lambda: len(sinfo(controller)) == len(nodes)
             and all(s[0] == "idle" for s in sinfo(controller).values()),
             controller, 60, f"{len(nodes)} idle nodes")

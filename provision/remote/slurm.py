"""Slurm as a launcher: ``srun`` argv builders and per-node job steps.

Per-node checks run as one ``srun -N1 --nodelist=NODE --exclusive
--gpus-per-node=<all> --cpus-per-task=<all> --immediate`` step per node (the node
to itself, every GPU and every CPU Slurm counts there: without this a step gets
one CPU and, under ``ConstrainDevices=yes``, no GPU at all), submitted
from a submit host (this machine, or a login/controller node reached over
SSH), so compute nodes need no SSH from forge at all.
Multi-node programs get a single ``srun -N<n>`` argv from :func:`srun_argv`.
A node Slurm will not give us (down, drained, unknown) is *unreachable*.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from provision.remote.base import Command, Launcher, Result

#: srun's words for "this node cannot be had now"
_NOT_USABLE = re.compile(
    r"Unable to allocate resources|Immediate execution impossible|"
    r"Required node not available|Invalid node name|Requested node configuration is not "
    r"available|Node count specification invalid|job .* queued and waiting for resources|"
    r"Unable to contact slurm controller")
#: seconds Slurm and srun get beyond a check's own timeout before we kill srun
GRACE_S = 15


@dataclass(frozen=True)
class SrunOptions:
    nodes: tuple[str, ...]
    ntasks_per_node: int = 1
    gpus_per_node: int = 0
    time_limit_s: float = 600
    immediate_s: int = 30
    job_name: str = "forge-check"
    partition: str | None = None
    mpi: str | None = None          # "pmix" for NCCL across nodes
    exclusive: bool = False
    cpus_per_task: int = 0
    gpus_per_task: int = 0
    gpu_bind: str | None = None     # "closest": each rank on the GPU nearest its CPUs
    reservation: str | None = None  # an acceptance reservation (see checks/ownership.py)
    extra: tuple[str, ...] = ()


def time_limit(seconds: float) -> str:
    """Slurm's ``--time`` in whole minutes, at least one (``MM``)."""
    return str(max(1, math.ceil(seconds / 60)))


def srun_argv(opts: SrunOptions, program: Sequence[str]) -> list[str]:
    """``srun -N<n> --nodelist=... --immediate=... --time=... -- program`` (pure)."""
    from provision.nodes import fold

    argv = ["srun", f"--nodes={len(opts.nodes)}", f"--nodelist={fold(opts.nodes)}",
            f"--ntasks-per-node={opts.ntasks_per_node}", f"--immediate={opts.immediate_s}",
            f"--time={time_limit(opts.time_limit_s)}", f"--job-name={opts.job_name}",
            "--kill-on-bad-exit=1"]
    for flag, value in (("gpus-per-node", opts.gpus_per_node),
                        ("gpus-per-task", opts.gpus_per_task), ("gpu-bind", opts.gpu_bind),
                        ("cpus-per-task", opts.cpus_per_task),
                        ("reservation", opts.reservation), ("partition", opts.partition),
                        ("mpi", opts.mpi)):
        if value:
            argv.append(f"--{flag}={value}")
    if opts.exclusive:
        argv.append("--exclusive")
    argv.extend(opts.extra)
    argv.append("--")
    argv.extend(program)
    return argv


def sbatch_argv(opts: SrunOptions, program: Sequence[str], output: str) -> list[str]:
    """``sbatch --wait`` of one srun step (for sites where srun cannot be held open)."""
    from provision.nodes import fold

    step = srun_argv(replace(opts, immediate_s=0), program)
    step = [a for a in step if not a.startswith("--immediate")]
    import shlex

    return ["sbatch", "--wait", f"--nodes={len(opts.nodes)}", f"--nodelist={fold(opts.nodes)}",
            f"--time={time_limit(opts.time_limit_s)}", f"--job-name={opts.job_name}",
            f"--output={output}", "--wrap", shlex.join(step)]


class SlurmLauncher:
    """One srun step per node, started through ``submit`` (a local or SSH launcher)."""

    name = "slurm"

    def __init__(self, submit: Launcher, submit_node: str, *, partition: str | None = None,
                 immediate_s: int = 30, gpus: Mapping[str, int] | None = None,
                 reservation: str | None = None) -> None:
        self.submit = submit
        self.submit_node = submit_node
        self.partition = partition
        self.immediate_s = immediate_s
        self.gpus = dict(gpus or {})
        self.reservation = reservation

    def wrap(self, node: str, cmd: Command) -> Command:
        opts = SrunOptions(nodes=(node,), time_limit_s=cmd.timeout, immediate_s=self.immediate_s,
                           partition=self.partition, job_name=f"forge-{node}", exclusive=True,
                           gpus_per_node=self.gpus.get(node, 0), reservation=self.reservation)
        # `timeout` stops srun (which forwards SIGTERM to the step) at the check's
        # own limit; Slurm's --time is the backstop, the submit launcher's the last one.
        # The one task asks for every CPU Slurm counts on the node (sinfo %c): an
        # exclusive job alone still gives its step one CPU per task
        argv = ["timeout", "--kill-after=5", f"{cmd.timeout:g}", *srun_argv(opts, cmd.argv)]
        at = argv.index("--")
        line = (shlex.join(argv[:at]) + ' --cpus-per-task="$(sinfo -h -N -n ' +
                shlex.quote(node) + ' -o %c | head -n1)" ' + shlex.join(argv[at:]))
        return Command(("sh", "-c", line), cmd.timeout + self.immediate_s + GRACE_S,
                       cmd.stdin)

    def run(self, commands: Mapping[str, Command]) -> dict[str, Result]:
        # The submit launcher runs every step on the submit host; results are keyed
        # back to the compute node each step ran on.
        keyed = {node: self.wrap(node, cmd) for node, cmd in commands.items()}
        results = _run_on(self.submit, self.submit_node, keyed)
        return {node: self._classify(node, commands[node], r) for node, r in results.items()}

    def _classify(self, node: str, cmd: Command, r: Result) -> Result:
        if r.status == "failed" and r.returncode == 124:
            return replace(r, node=node, status="timeout", returncode=None,
                           detail=f"killed after {cmd.timeout:g} s timeout (srun)")
        if r.status == "failed" and _NOT_USABLE.search(r.stderr):
            line = next(ln for ln in r.stderr.splitlines() if _NOT_USABLE.search(ln))
            return replace(r, node=node, status="unreachable", returncode=None,
                           detail=f"Slurm: {line.strip()[:200]}")
        return replace(r, node=node)

    def close(self) -> None:
        self.submit.close()


def _run_on(submit: Launcher, submit_node: str,
            keyed: Mapping[str, Command]) -> dict[str, Result]:
    """Run many commands on one submit host concurrently (each on its own channel)."""
    run_many = getattr(submit, "run_many_on", None)
    if run_many is not None:
        results: dict[str, Result] = run_many(submit_node, keyed)
        return results
    out: dict[str, Result] = {}
    for node, cmd in keyed.items():  # launchers without run_many_on: one by one
        out[node] = submit.run({submit_node: cmd})[submit_node]
    return out

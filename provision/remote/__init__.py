"""Launchers: run one command per node locally, over SSH (paramiko) or through Slurm.

Every launcher takes ``{node: Command}`` and returns ``{node: Result}`` and
never raises for a node that fails: a result says ``ok``, ``failed``,
``timeout``, ``unreachable`` or ``not-installed``, so one bad node never hides
the others. Multi-node programs (NCCL across nodes, node-to-node RDMA) are
started by Slurm or ``mpirun`` argv builders (:mod:`.slurm`, :mod:`.mpi`),
never by a launcher of our own.
"""

from provision.remote.base import Command, Launcher, Result, Target

__all__ = ["Command", "Launcher", "Result", "Target"]

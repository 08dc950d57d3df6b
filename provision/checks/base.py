"""What a check is: a declaration the engine runs, never code that runs itself.

A check states what it needs (GPUs, NVLink, InfiniBand or RoCE, two nodes,
a scheduler), builds its command line with a pure function, parses the raw
output with a pure function, says whether the program ran correctly
(``sanity``: problems mean the run proves nothing, not that the hardware is
bad) and turns the parsed data into measurements judged against the node's
plan. The engine (:mod:`provision.checks.engine`) does the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from provision.checks.options import NoOptions
from provision.expectations import NodePlan, SitePlan
from provision.measurement import Measurement
from provision.spec.model import Site

Scope = Literal["node", "cluster"]

#: The interpreters on the nodes. The collector needs only the standard library; the HBM
#: and SDC workloads need CuPy or PyTorch and nvidia-ml-py, which the acceptance_tools role
#: installs into its venv (`venv: /opt/forge/venv` in its defaults/main.yml): the spec's
#: `acceptance.python` and `acceptance.gpu_python` change them.
DEFAULT_PYTHON = "python3"
DEFAULT_GPU_PYTHON = "/opt/forge/venv/bin/python"


@dataclass(frozen=True)
class Needs:
    """What a check needs from a node (node scope) or from the site (cluster scope)."""

    gpu: bool = False
    nvlink: bool = False
    infiniband: bool = False
    roce: bool = False
    rdma: bool = False          # InfiniBand or RoCE
    two_nodes: bool = False
    scheduler: str | None = None

    def unmet(self, site: Site, plans: list[NodePlan]) -> str | None:
        """Why these needs are not met by ``plans`` (all must meet them), or None."""
        if self.scheduler and site.stack.scheduler != self.scheduler:
            return f"needs scheduler {self.scheduler} (the spec uses {site.stack.scheduler})"
        if self.two_nodes and len(plans) < 2:
            return "needs two or more nodes"
        for p in plans:
            layers = {n["link_layer"] for n in p.nics if n["purpose"] == "compute"}
            if self.gpu and not p.gpu_count:
                return f"{p.node}: profile {p.profile} has no GPUs"
            if self.nvlink and not p.nvlink_pairs:
                return f"{p.node}: profile {p.profile} has no NVLink bridges"
            if self.infiniband and "InfiniBand" not in layers:
                return f"{p.node}: profile {p.profile} has no InfiniBand compute NICs"
            if self.roce and "Ethernet" not in layers:
                return f"{p.node}: profile {p.profile} has no RoCE compute NICs"
            if self.rdma and not layers:
                return f"{p.node}: profile {p.profile} has no RDMA compute NICs"
        return None


@dataclass(frozen=True)
class Context:
    """Everything a check's argv builder may look at (pure data)."""

    site: Site
    nodes: tuple[str, ...]              # the nodes this run covers
    node: str | None = None             # the node of a node-scope invocation
    plan: NodePlan | None = None
    python: str = DEFAULT_PYTHON        # interpreter on the nodes (acceptance.python)
    via: str = "ssh"
    #: this check's typed options (an instance of its ``Options``)
    options: Any = field(default_factory=NoOptions)
    #: the operator's per-check time limit (``--timeout``), else the check's own
    timeout_s: float | None = None
    #: the Slurm reservation the nodes are held in (``--reservation``)
    reservation: str | None = None
    #: interpreter of the GPU workloads on the nodes (acceptance.gpu_python)
    gpu_python: str = DEFAULT_GPU_PYTHON


@dataclass(frozen=True)
class Raw:
    """What one invocation left: the engine hands this to ``parse``."""

    key: str                             # node name, or "a+b" for a pair invocation
    stdout: str
    stderr: str
    returncode: int | None
    nodes: tuple[str, ...] = ()          # the nodes a cluster invocation covered


@dataclass(frozen=True)
class Invocation:
    """One program a cluster-scope check runs (a pair of nodes, one collective)."""

    key: str
    argv: tuple[str, ...]
    stdin: str | None = None
    nodes: tuple[str, ...] = ()


class Check:
    """Base of every check; subclasses set the class attributes and override the methods."""

    name: ClassVar[str]
    description: ClassVar[str]
    tags: ClassVar[tuple[str, ...]] = ()
    needs: ClassVar[Needs] = Needs()
    scope: ClassVar[Scope] = "node"
    timeout_s: ClassVar[float] = 120.0
    #: the program whose absence means "not installed" (reported as tool_present 0)
    tool: ClassVar[str] = ""
    #: threshold names the check must find in a node's plan before it can judge it
    references: ClassVar[tuple[str, ...]] = ()
    #: takes the GPUs or the fabric: runs only on nodes drained or reserved for
    #: acceptance (provision.checks.ownership), unless the operator says --force
    disruptive: ClassVar[bool] = False
    #: the check's options: a frozen dataclass of typed fields made with
    #: :func:`provision.checks.options.option` (default, unit, description)
    Options: ClassVar[type] = NoOptions

    # --- node scope
    def argv(self, ctx: Context) -> list[str]:
        raise NotImplementedError

    def stdin(self, ctx: Context) -> str | None:
        return None

    # --- cluster scope
    def invocations(self, ctx: Context) -> list[Invocation]:
        raise NotImplementedError

    # --- both
    def parse(self, raw: Raw) -> Any:
        raise NotImplementedError

    def sanity(self, data: Any) -> list[str]:
        return []

    def measurements(self, data: Any, plan: NodePlan) -> list[Measurement]:
        """Node scope: records of one node, judged against its plan."""
        raise NotImplementedError

    def cluster_measurements(self, data: Any, plan: SitePlan) -> list[Measurement]:
        """Cluster scope: records of many nodes, each judged against its own plan."""
        raise NotImplementedError

    def timeout(self, ctx: Context) -> float:
        return float(ctx.timeout_s or self.timeout_s)

"""Slurm health: every node the spec names is known to Slurm and usable.

Runs ``scontrol show node --oneliner`` once on the submit host (the
controller or a login node) and judges each spec node with the compute role.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from provision.checks.base import Check, Context, Invocation, Needs, Raw
from provision.errors import InputError
from provision.expectations import SitePlan
from provision.measurement import Measurement

#: base states in which a node runs jobs
USABLE = {"IDLE", "MIXED", "ALLOCATED", "COMPLETING", "PLANNED"}
#: flags that make any base state unusable
BAD_FLAGS = {"DRAIN", "DRAINING", "DRAINED", "FAIL", "FAILING", "MAINTENANCE", "NOT_RESPONDING",
             "POWERED_DOWN", "POWERING_DOWN", "REBOOT_REQUESTED", "INVALID_REG", "RESERVED"}
_FIELD = re.compile(r"(\w+)=(.*?)(?=\s+\w+=|$)")


@dataclass(frozen=True)
class SlurmNode:
    name: str
    state: str            # "IDLE", "DOWN+DRAIN", "IDLE*"
    reason: str

    @property
    def flags(self) -> set[str]:
        return {f for f in self.state.rstrip("*~#!%$@^-").split("+") if f}

    @property
    def usable(self) -> bool:
        if self.state.endswith("*"):            # not responding
            return False
        base, *flags = self.state.split("+")
        return base in USABLE and not (set(flags) & BAD_FLAGS)


@dataclass(frozen=True)
class SlurmView:
    expected: tuple[str, ...]             # spec compute nodes this run covers
    known: dict[str, SlurmNode]           # what Slurm reports


def parse_scontrol_nodes(text: str, source: str = "scontrol") -> dict[str, SlurmNode]:
    """``scontrol show node --oneliner`` -> nodes by name (pure)."""
    nodes: dict[str, SlurmNode] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = dict(_FIELD.findall(line.strip()))
        if "NodeName" not in fields:
            if line.startswith("No nodes"):
                continue
            raise InputError(f"{source}:{lineno}: not a node line: {line[:80]!r}")
        name = fields["NodeName"].split()[0]
        nodes[name] = SlurmNode(name, fields.get("State", "UNKNOWN").split()[0],
                                fields.get("Reason", "").strip())
    return nodes


class SlurmHealth(Check):
    name = "slurm"
    description = "every compute node of the spec is known to Slurm and usable"
    tags = ("scheduler", "slurm", "no-gpu")
    needs = Needs(scheduler="slurm")
    scope = "cluster"
    timeout_s = 60.0
    tool = "scontrol"

    def invocations(self, ctx: Context) -> list[Invocation]:
        compute = tuple(n.name for n in ctx.site.nodes
                        if "compute" in n.roles and n.name in ctx.nodes)
        if not compute:
            return []
        return [Invocation("cluster", ("scontrol", "show", "node", "--oneliner"),
                           nodes=compute)]

    def parse(self, raw: Raw) -> SlurmView:
        if raw.returncode not in (0, None):
            tail = (raw.stderr.strip().splitlines() or ["no output"])[-1]
            raise InputError(f"scontrol failed: {tail}")
        return SlurmView(raw.nodes, parse_scontrol_nodes(raw.stdout))

    def sanity(self, data: SlurmView) -> list[str]:
        return [] if data.known else ["scontrol listed no nodes"]

    def cluster_measurements(self, data: SlurmView, plan: SitePlan) -> list[Measurement]:
        out = []
        for name in data.expected:
            p = plan.for_node(name)
            n = data.known.get(p.node)
            if n is None:
                detail, ok = "not known to Slurm", 0
            else:
                ok = int(n.usable)
                detail = f"State={n.state}" + (f" Reason={n.reason}" if n.reason else "")
            out.append(Measurement(node=p.node, metric="slurm_node_ok", value=float(ok),
                                   gpu=None, unit="bool", min=1.0, max=1.0, expected=1.0,
                                   check=self.name, profile=p.profile, detail=detail,
                                   source="the site spec names this node as a compute node"))
        return out

"""Tool presence: every program the other checks and the stack need is installed on the node.

A missing tool is reported here as ``tool_present 0`` ("not installed"), so
the checks that need it are not mistaken for broken hardware.
"""

from __future__ import annotations

from typing import Any

from provision.checks.base import Context, Needs
from provision.checks.collected import Collected, CollectorCheck
from provision.checks.reference import exact
from provision.expectations import NodePlan
from provision.measurement import Measurement
from provision.spec.model import Site


def required_tools(site: Site, plan: NodePlan, roles: tuple[str, ...]) -> dict[str, str]:
    """tool -> why it is required on this node (pure; from the spec and the profile)."""
    need: dict[str, str] = {"python3": "forge runs its node-side collectors with python3",
                            "setsid": "forge runs remote commands in their own session"}
    if site.stack.scheduler == "slurm":
        if "compute" in roles:
            need["slurmd"] = "stack.scheduler slurm: compute nodes run slurmd"
        if "controller" in roles:
            need["slurmctld"] = "stack.scheduler slurm: the controller runs slurmctld"
        need["sinfo"] = need["srun"] = "stack.scheduler slurm: Slurm client commands"
    layers = {n["link_layer"] for n in plan.nics if n["purpose"] == "compute"}
    if plan.gpu_count:
        why = f"profile {plan.profile} has {plan.gpu_count}x {plan.gpu_model}"
        for t in ("nvidia-smi", "dcgmi", "all_reduce_perf"):
            need[t] = why
    if layers:
        why = f"profile {plan.profile} has RDMA compute NICs"
        for t in ("ibv_devinfo", "ib_write_bw"):
            need[t] = why
        if "InfiniBand" in layers:
            need["ibstat"] = f"profile {plan.profile} has InfiniBand compute NICs"
    for t in site.acceptance_map.get("tools", []) or []:
        need.setdefault(str(t), "acceptance.tools in the site spec")
    return need


class ToolPresence(CollectorCheck):
    name = "tools"
    description = "every tool the stack and the checks need is installed"
    tags = ("inventory", "tools", "no-gpu")
    needs = Needs()
    timeout_s = 60.0

    def request(self, ctx: Context) -> dict[str, Any]:
        assert ctx.plan is not None and ctx.node is not None
        need = required_tools(ctx.site, ctx.plan, ctx.site.node(ctx.node).roles)
        return {"facts": [], "tools": sorted(need), "commands": {}, "expect": {"why": need}}

    def measurements(self, data: Collected, plan: NodePlan) -> list[Measurement]:
        why: dict[str, str] = data.request.get("expect", {}).get("why", {})
        out = []
        for tool, path in sorted(data.tools.items()):
            out.append(exact(plan, "tool_present", 1 if path else 0, 1, check=self.name,
                             source=why.get(tool, "required"),
                             detail=f"{tool}: {path}" if path else f"{tool}: not installed"))
        return out

"""Catalog 4, NCCL: nccl-tests within each node and across nodes (Slurm or mpirun).

Within a node one process drives every GPU (``-g <count>``). Across nodes
one rank per GPU is started by ``srun --mpi=pmix`` (or ``mpirun``): the whole
selection once, then pairs of neighbouring nodes in a ring, so a bad node or
rail shows up as the two pairs it belongs to (records carry ``peer``).
Bus bandwidth at the largest size is judged; ``#wrong`` must be 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provision.checks.base import Check, Context, Invocation, Needs, Raw
from provision.checks.collected import Collected, CollectorCheck, command
from provision.checks.nccl_transport import env_argv, nccl_env, transport, transport_record
from provision.checks.options import option
from provision.checks.reference import annotate, threshold
from provision.errors import InputError
from provision.expectations import NodePlan, SitePlan, plan_site
from provision.measurement import Measurement
from provision.parsers import get as parser
from provision.remote.mpi import mpirun_argv
from provision.remote.slurm import SrunOptions, srun_argv

COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "alltoall")
PAIR = "pair:"


@dataclass(frozen=True)
class NcclOptions:
    collectives: str | None = option(
        None, choices=COLLECTIVES, help="comma-separated nccl-tests collectives (default: "
                                        "acceptance.nccl_collectives of the spec, else all_reduce)")


def collectives(ctx: Context) -> list[str]:
    opts: NcclOptions = ctx.options
    names = opts.collectives or ctx.site.acceptance_map.get(
        "nccl_collectives") or ["all_reduce"]
    if isinstance(names, str):
        names = names.split(",")
    bad = [n for n in names if n not in COLLECTIVES]
    if bad:
        raise InputError(f"unknown collective(s) {', '.join(bad)}",
                         hint="one of: " + ", ".join(COLLECTIVES))
    return list(names)


def perf_argv(collective: str, gpus_per_process: int, max_bytes: str = "8G") -> list[str]:
    """``all_reduce_perf -b 8 -e 8G -f 2 -g N -c 1`` (check results: #wrong is meaningful)."""
    return [f"{collective}_perf", "-b", "8", "-e", max_bytes, "-f", "2",
            "-g", str(gpus_per_process), "-c", "1"]


class Nccl(CollectorCheck):
    name = "nccl"
    disruptive = True
    description = "nccl-tests within each node: bus bandwidth at 8 GB, #wrong = 0"
    tags = ("gpu", "nccl", "performance")
    needs = Needs(gpu=True)
    timeout_s = 900.0
    references = ("nccl_busbw_intra",)
    Options = NcclOptions

    def request(self, ctx: Context) -> dict[str, Any]:
        assert ctx.plan is not None
        # nccl-tests is built with MPI=1 (acceptance_tools) for the runs across nodes; here
        # one process drives every GPU, a singleton even inside the per-node srun step
        # (--via slurm), where Open MPI 4.x would otherwise refuse to start it
        cmds = {c: command(perf_argv(c, ctx.plan.gpu_count), timeout=600, mpi_singleton=True)
                for c in collectives(ctx)}
        # each NVLink-bridged pair alone: the 8-GPU ring is PCIe-bound and cannot see a
        # bridge running at a third of its bandwidth
        for a, b in ctx.plan.nvlink_pairs:
            cmds[f"{PAIR}{a}-{b}"] = command(perf_argv("all_reduce", 2), timeout=300,
                                            env={"CUDA_VISIBLE_DEVICES": f"{a},{b}"},
                                            mpi_singleton=True)
        return {"commands": cmds}

    def measurements(self, data: Collected, plan: NodePlan) -> list[Measurement]:
        out: list[Measurement] = []
        for name in data.commands:
            pair = name.startswith(PAIR)
            t = threshold(plan, "nccl_busbw_pair" if pair else "nccl_busbw_intra")
            if data.missing(name):
                out.append(Measurement(node=plan.node, metric="tool_present", value=0.0,
                                       min=1.0, check=self.name, profile=plan.profile,
                                       detail=f"{name}_perf: not installed"))
                continue
            c = data.commands[name]
            text = (c.get("stdout") or "") + (c.get("stderr") or "")
            result = parser("nccl-tests").parse(text, node=plan.node,
                                                source_name=f"{plan.node}:{name}_perf")
            recs = parser("nccl-tests").measurements(result, check=self.name)
            recs = [r for r in recs if r.metric != "nccl_busbw_by_size"]
            if pair:
                recs = [_rename(r, "nccl_busbw_pair", f"GPUs {name[len(PAIR):]}")
                        for r in recs]
            out += [_judge_busbw(r, t) for r in annotate(plan, recs, self.name)]
        return out


def _judge_busbw(r: Measurement, t: Any) -> Measurement:
    from dataclasses import replace

    from provision.checks.reference import limits

    return replace(r, **limits(t)) if r.metric == t.metric else r


def _rename(r: Measurement, metric: str, where: str) -> Measurement:
    from dataclasses import replace

    if r.metric != "nccl_busbw":
        return replace(r, detail=f"{where}: {r.detail or ''}".strip())
    return replace(r, metric=metric, detail=f"{where}: {r.detail or ''}".strip())


def ring_pairs(nodes: list[str]) -> list[tuple[str, str]]:
    """Neighbouring pairs around a ring: each node is in two pairs (one with 2 nodes)."""
    if len(nodes) < 2:
        return []
    if len(nodes) == 2:
        return [(nodes[0], nodes[1])]
    return [(nodes[i], nodes[(i + 1) % len(nodes)]) for i in range(len(nodes))]


class NcclMultiNode(Check):
    name = "nccl-multinode"
    disruptive = True
    description = "nccl-tests across nodes via srun/mpirun: all nodes, then ring pairs"
    tags = ("gpu", "nccl", "fabric", "performance", "multi-node")
    needs = Needs(gpu=True, rdma=True, two_nodes=True)
    scope = "cluster"
    timeout_s = 1200.0
    references = ("nccl_busbw_inter", "nccl_alltoall_inter")
    serial = True  # collectives share the fabric: one at a time
    Options = NcclOptions

    def invocations(self, ctx: Context) -> list[Invocation]:
        nodes = list(ctx.nodes)
        gpus = ctx.site.node(nodes[0]).profile.gpu
        per_node = gpus.count if gpus else 0
        sets = [tuple(nodes)] + [p for p in ring_pairs(nodes) if len(nodes) > 2]
        out = []
        plan = plan_site(ctx.site).for_node(nodes[0])
        env = nccl_env(plan.hca_ports(), plan.roce)
        # one GPU per rank, bound to the GPU nearest its CPUs; nccl-tests then uses
        # device 0 of what it sees (NCCL_TESTS_DEVICE) instead of its local rank
        cpus = max(1, plan.cpu_cores // per_node) if per_node else 1
        for c in collectives(ctx):
            for group in sets:
                if ctx.via == "slurm":
                    program = env_argv({**env, "NCCL_TESTS_DEVICE": "0"}) + perf_argv(c, 1)
                    argv = srun_argv(SrunOptions(nodes=group, ntasks_per_node=per_node,
                                                 gpus_per_task=1, gpu_bind="closest",
                                                 cpus_per_task=cpus, mpi="pmix",
                                                 reservation=ctx.reservation,
                                                 time_limit_s=self.timeout(ctx),
                                                 job_name=f"forge-nccl-{c}"), program)
                else:
                    argv = mpirun_argv(group, per_node, perf_argv(c, 1), env=env)
                key = f"{c}-all" if len(group) > 2 else "+".join(group)
                out.append(Invocation(key if c == "all_reduce" else f"{c}:{key}", tuple(argv),
                                      nodes=group))
        return out

    def parse(self, raw: Raw) -> Any:
        text = raw.stdout + raw.stderr
        node = raw.nodes[0] if raw.nodes else raw.key
        return (parser("nccl-tests").parse(text, node=node, source_name=f"{raw.key}"),
                transport(text), raw.nodes, raw.key)

    def cluster_measurements(self, data: Any, plan: SitePlan) -> list[Measurement]:
        result, path, nodes, key = data
        known = {p.node for p in plan.nodes}
        first = next((n for n in (*nodes, result.node) if n in known), plan.nodes[0].node)
        node_plan = plan.for_node(first)
        alltoall = key.startswith("alltoall")
        t = threshold(node_plan, "nccl_alltoall_inter" if alltoall else "nccl_busbw_inter")
        recs = [r for r in parser("nccl-tests").measurements(result, check=self.name)
                if r.metric != "nccl_busbw_by_size"]
        if alltoall:
            recs = [_rename(r, "nccl_busbw_alltoall", "alltoall") for r in recs]
        peer = "+".join(nodes[1:]) if len(nodes) > 1 else None
        return [_judge_busbw(r, t) for r in annotate(node_plan, recs, self.name)] + [
            transport_record(node_plan.node, path, check=self.name, peer=peer)]

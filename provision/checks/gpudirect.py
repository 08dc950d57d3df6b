"""Catalog 3, GPUDirect RDMA: peer-memory module loaded, ib_write_bw --use_cuda at line rate.

Within a node: around a ring of the compute NICs, a server on NIC i with its
local GPU and a client on NIC i+1 with its own local GPU, so traffic leaves
one adapter and enters another through the fabric. Between nodes (cluster
scope): one srun step of two tasks per neighbouring node pair.
"""

from __future__ import annotations

import shlex
from typing import Any

from provision.checks.base import Check, Context, Invocation, Needs, Raw
from provision.checks.collected import Collected, CollectorCheck, command
from provision.checks.nccl import ring_pairs
from provision.checks.reference import annotate, exact
from provision.errors import InputError
from provision.expectations import NodePlan, SitePlan
from provision.measurement import Measurement
from provision.parsers import get as parser
from provision.remote.slurm import SrunOptions, srun_argv

BASE_PORT = 18515


def nic_gpu_pairs(plan: NodePlan) -> list[tuple[str, int]]:
    """(first port's device, nearest GPU) for each compute adapter, from the profile."""
    out = []
    i = 0
    devices = list(plan.fabric_devices)
    for spec in (n for n in plan.nics if n["purpose"] == "compute"):
        for k in range(int(spec["count"])):
            dev_index = i * int(spec["ports"])
            aff = spec["gpu_affinity"][k] if k < len(spec["gpu_affinity"]) else [0]
            if dev_index < len(devices):
                out.append((devices[dev_index], int(aff[0]) if aff else 0))
            i += 1
    return out


def write_bw(device: str, gpu: int, port: int, roce: bool, server: str | None = None,
             seconds: int = 5) -> list[str]:
    argv = ["ib_write_bw", "-d", device, "-i", "1", f"--use_cuda={gpu}", "-p", str(port),
            "-q", "4", "-s", "1048576", "-D", str(seconds), "--report_gbits", "-F"]
    if roce:
        argv += ["-x", "3", "-R"]
    if server:
        argv.append(server)
    return argv


class GpuDirect(CollectorCheck):
    name = "gpudirect"
    disruptive = True
    description = "nvidia-peermem or dma-buf, ib_write_bw --use_cuda between NICs of a node"
    tags = ("gpu", "fabric", "gpudirect", "performance")
    needs = Needs(gpu=True, rdma=True)
    timeout_s = 300.0
    references = ("gpudirect_bw",)

    def request(self, ctx: Context) -> dict[str, Any]:
        assert ctx.plan is not None
        pairs = nic_gpu_pairs(ctx.plan)
        if len(pairs) < 2:
            raise InputError(f"{ctx.plan.node}: gpudirect needs two compute NICs in profile "
                             f"{ctx.plan.profile}")
        roce = any(n["link_layer"] == "Ethernet" for n in ctx.plan.nics)
        cmds = {}
        for i, (dev, gpu) in enumerate(pairs):
            peer_dev, peer_gpu = pairs[(i + 1) % len(pairs)]
            port = BASE_PORT + i
            cmds[f"{dev}->{peer_dev}"] = command(
                write_bw(peer_dev, peer_gpu, port, roce, server="localhost"), timeout=60,
                server=write_bw(dev, gpu, port, roce), server_wait=1.0)
        return {"facts": ["modules"], "tools": ["ib_write_bw"], "commands": cmds}

    def measurements(self, data: Collected, plan: NodePlan) -> list[Measurement]:
        mods = data.facts.get("modules", {})
        peer = int(bool(mods.get("nvidia_peermem") or mods.get("nv_peer_mem")))
        out = [exact(plan, "gpudirect_module_ok", peer, 1, check=self.name,
                     source="GPUDirect RDMA needs nvidia-peermem (or dma-buf with perftest "
                            "--use_cuda_dmabuf)", detail=f"modules: {mods}")]
        for name, c in data.commands.items():
            if c.get("missing"):
                out.append(exact(plan, "tool_present", 0, 1, check=self.name,
                                 source="perftest is needed for GPUDirect checks",
                                 detail=f"{c['missing']}: not installed"))
                continue
            text = c.get("stdout") or ""
            result = parser("perftest").parse(text, node=plan.node,
                                              source_name=f"{plan.node}:{name}")
            recs = parser("perftest").measurements(result, check=self.name)
            recs = [r for r in recs if r.metric != "ib_bw_by_size"]
            out += annotate(plan, [_with_peer(r, name) for r in recs], self.name)
        return out


def _with_peer(r: Measurement, pair: str) -> Measurement:
    from dataclasses import replace

    return replace(r, peer=r.peer or pair.split("->")[0],
                   detail=f"{pair}: {r.detail or ''}".strip())


class RdmaPairs(Check):
    name = "rdma-pairs"
    disruptive = True
    description = "ib_write_bw (--use_cuda) between neighbouring nodes, one srun step per pair"
    tags = ("fabric", "gpudirect", "multi-node", "performance")
    needs = Needs(rdma=True, two_nodes=True, scheduler="slurm")
    scope = "cluster"
    timeout_s = 300.0
    references = ("ib_write_bw",)
    serial = True

    def invocations(self, ctx: Context) -> list[Invocation]:
        out = []
        for a, b in ring_pairs(list(ctx.nodes)):
            plan = ctx.site.node(a)
            gpu = plan.profile.gpu is not None
            pa = next(iter(_pairs_for(ctx, a)), None)
            if pa is None:
                continue
            dev, g = pa
            roce = any(n.link_layer == "Ethernet" for n in plan.profile.compute_nics)
            srv = write_bw(dev, g, BASE_PORT, roce) if gpu else \
                [x for x in write_bw(dev, g, BASE_PORT, roce) if not x.startswith("--use_cuda")]
            cli = srv + [a]
            # task 0 (first node) serves, task 1 (second node) connects to it
            script = (f"if [ \"$SLURM_PROCID\" = 0 ]; then exec {shlex.join(srv)}; "
                      f"else sleep 2; exec {shlex.join(cli)}; fi")
            argv = srun_argv(SrunOptions(nodes=(a, b), ntasks_per_node=1,
                                         time_limit_s=self.timeout(ctx),
                                         job_name="forge-rdma-pair"),
                             ["sh", "-c", script])
            out.append(Invocation(f"{a}+{b}", tuple(argv), nodes=(a, b)))
        return out

    def parse(self, raw: Raw) -> tuple[tuple[str, ...], Any]:
        # srun interleaves both tasks; perftest prints the table on both sides
        node = raw.nodes[0] if raw.nodes else raw.key
        return raw.nodes, parser("perftest").parse(raw.stdout, node=node, source_name=raw.key)

    def cluster_measurements(self, data: tuple[tuple[str, ...], Any],
                             plan: SitePlan) -> list[Measurement]:
        from dataclasses import replace

        nodes, result = data
        node_plan = plan.for_node(nodes[0])
        recs = [replace(r, node=nodes[0], peer=nodes[1] if len(nodes) > 1 else r.peer)
                for r in parser("perftest").measurements(result, check=self.name)
                if r.metric != "ib_bw_by_size"]
        return annotate(node_plan, recs, self.name, rules="gpudirect")


def _pairs_for(ctx: Context, node: str) -> list[tuple[str, int]]:
    from provision.expectations import plan_site

    return nic_gpu_pairs(plan_site(ctx.site).for_node(node))

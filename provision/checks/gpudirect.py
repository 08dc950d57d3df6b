"""Catalog 3, GPUDirect RDMA: every compute port and every GPU-NIC path at line rate.

Within a node (``gpudirect``): every compute port of the plan (its HCA name
from the spec's fabric addresses) paired with the GPU nearest it (the NIC's
``gpu_affinity``, one GPU per port), so every port and every GPU-NIC path
carries GPU memory. Around a ring of the ports, a server on port i with its GPU
and a client on port i+1 with its own GPU, *one pair at a time* (each port's
own figure), then *all pairs at once* (the aggregate: what exposes a PCIe
switch or host bridge that cannot feed every port). RoCE clients connect to the
server's rail IP with RDMA-CM and the lossless traffic class; InfiniBand ones
through the loopback for the out-of-band exchange.

Between nodes (``rdma-pairs``): one Slurm step of two tasks per neighbouring
node pair, every rail: the first node serves all its compute ports, the second
connects to each, one rail after the other.
"""

from __future__ import annotations

import shlex
from dataclasses import replace
from typing import Any

from provision.checks.base import Check, Context, Invocation, Needs, Raw
from provision.checks.collected import Collected, CollectorCheck, command
from provision.checks.nccl import ring_pairs
from provision.checks.nccl_transport import ROCE_GID_INDEX, ROCE_TRAFFIC_CLASS
from provision.checks.reference import annotate, exact, judged
from provision.errors import InputError
from provision.expectations import NodePlan, SitePlan
from provision.measurement import Measurement
from provision.parsers import get as parser
from provision.parsers import ib_counters
from provision.remote.slurm import SrunOptions, srun_argv

BASE_PORT = 18515
ALL = "all-at-once"
MARK = "@@forge-rail"
#: IB port error counters (:mod:`provision.parsers.ib_counters`) are read before and after
#: the runs: any increase while GPUDirect traffic ran fails the port
COUNTER_CMD = ("for p in /sys/class/infiniband/*/ports/*; do d=${p%/ports/*}; d=${d##*/}; "
               "for c in " + " ".join(ib_counters.COUNTERS) + "; do [ -r $p/counters/$c ] && "
               "echo \"$d ${p##*/} $c $(cat $p/counters/$c)\"; done; done")


def counter_values(text: str) -> dict[tuple[str, str, str], int]:
    """``device port counter value`` lines -> values (pure)."""
    out = {}
    for ln in text.splitlines():
        parts = ln.split()
        if len(parts) == 4 and parts[3].isdigit():
            out[(parts[0], parts[1], parts[2])] = int(parts[3])
    return out


def port_paths(plan: NodePlan) -> list[dict[str, Any]]:
    """Every compute port of the node with the GPU nearest it: device, port, rail,
    address (rail IP), gpu. Ports come from the plan's fabric addresses (the spec's rail
    map); GPUs from the profile's ``gpu_affinity`` of each adapter, in port order."""
    ports = list(plan.fabric)
    gpus: list[int] = []
    for spec in (n for n in plan.nics if n["purpose"] == "compute"):
        per = int(spec["ports"])
        for k in range(int(spec["count"])):
            aff = spec["gpu_affinity"][k] if k < len(spec["gpu_affinity"]) else []
            gpus += [int(aff[j % len(aff)]) if aff else 0 for j in range(per)]
    return [{**p, "gpu": gpus[i] if i < len(gpus) else 0} for i, p in enumerate(ports)]


#: Runs ``"$@"`` (an ``ib_write_bw`` argv holding ``--use_cuda=N --use_cuda_dmabuf``) on GPU
#: memory through the path NCCL takes on the node. DMA-BUF (``ibv_reg_dmabuf_mr``) where the
#: open kernel modules run on a kernel >= 5.12: NCCL uses it whenever the driver supports it,
#: nvidia-peermem loaded or not (``useDmaBuf`` in NCCL's ``transport/net.cc``), and it is the
#: gpudirect role's default there. Else nvidia-peermem (the role's peermem mode: plain
#: ``--use_cuda`` registers GPU memory with ``ibv_reg_mr`` through peer memory).
GPU_MEMORY_PATH = (
    'v=$(uname -r); major=${v%%.*}; v=${v#*.}; minor=${v%%[!0-9]*}; '
    'if grep -q "Open Kernel Module" /proc/driver/nvidia/version 2>/dev/null '
    '&& { [ "$major" -gt 5 ] || { [ "$major" -eq 5 ] && [ "${minor:-0}" -ge 12 ]; }; }; '
    'then exec "$@"; fi; '
    'for a; do shift; [ "$a" = --use_cuda_dmabuf ] || set -- "$@" "$a"; done; exec "$@"')


#: Runs ``"$@"`` bound to the CPUs and memory of the NUMA node of the RDMA device ``$1``
#: (``numactl -N n -m n``, as Azure's HPC health checks run ib_write_bw/ib_write_lat), so a
#: run measures the NIC's own path and not a hop across the sockets' Infinity Fabric; as is
#: where the device reports no NUMA node (-1) or numactl is missing (field review 5.3).
NIC_NUMA_PIN = (
    'dev=$1; shift; n=$(cat "/sys/class/infiniband/$dev/device/numa_node" 2>/dev/null); '
    'if [ "${n:--1}" -ge 0 ] 2>/dev/null && command -v numactl >/dev/null 2>&1; '
    'then exec numactl --cpunodebind="$n" --membind="$n" "$@"; fi; exec "$@"')


def write_bw(device: str, gpu: int | None, port: int, roce: bool, server: str | None = None,
             seconds: int = 5, ib_port: int = 1) -> list[str]:
    """``ib_write_bw`` of one port, on the NIC's NUMA node (:data:`NIC_NUMA_PIN`); with
    ``gpu``, on that GPU's memory through the node's GPUDirect path
    (:data:`GPU_MEMORY_PATH`)."""
    argv = ["ib_write_bw", "-d", device, "-i", str(ib_port), "-p", str(port),
            "-q", "4", "-s", "1048576", "-D", str(seconds), "--report_gbits", "-F",
            "--perform_warm_up"]
    if roce:  # RDMA-CM to the rail IP, RoCEv2 GID, lossless class (docs/checks.md)
        argv += ["-R", "-x", ROCE_GID_INDEX, f"--tclass={ROCE_TRAFFIC_CLASS}"]
    if gpu is not None:
        argv[5:5] = [f"--use_cuda={gpu}", "--use_cuda_dmabuf"]
        argv = ["sh", "-c", GPU_MEMORY_PATH, "sh", *argv]
    if server:
        argv.append(server)
    return ["sh", "-c", NIC_NUMA_PIN, "sh", device, *argv]


def numa_note(data: Collected, devices: list[str]) -> str:
    """Where the runs of ``devices`` were bound (:data:`NIC_NUMA_PIN`), from the collector's
    sysfs facts; empty where the facts do not say."""
    if "numactl" in data.tools and data.tools["numactl"] is None:
        return "not pinned: numactl is not installed"
    numa = {d["name"]: _numa((d.get("pci") or {}).get("numa_node"))
            for d in data.facts.get("rdma", [])}
    if not numa:
        return ""
    return "pinned: " + ", ".join(
        f"{dev} to NUMA node {numa[dev]}" if numa.get(dev, -1) >= 0
        else f"{dev} not (no NUMA node)" for dev in devices)


def _numa(text: str | None) -> int:
    try:
        return int(text or -1)
    except ValueError:
        return -1


def gpudirect_path_record(plan: NodePlan, mods: dict[str, Any], check: str) -> Measurement:
    """1 when the node has a GPUDirect RDMA path: the open kernel modules loaded, which export
    GPU memory as DMA-BUF (the gpudirect role's default with them; it asserts kernel >= 5.12),
    or nvidia-peermem loaded (peermem mode). The bandwidth runs then prove the path works."""
    peermem = bool(mods.get("nvidia_peermem") or mods.get("nv_peer_mem"))
    dmabuf = bool(mods.get("nvidia") and mods.get("nvidia_open"))
    path = ("DMA-BUF (open kernel modules)" if dmabuf else "nvidia-peermem" if peermem
            else "none: neither the open kernel modules nor nvidia-peermem are loaded")
    return exact(plan, "gpudirect_module_ok", int(peermem or dmabuf), 1, check=check,
                 source="GPUDirect RDMA needs nvidia-peermem, or DMA-BUF from the open kernel "
                        "modules (CUDA GPUDirect RDMA guide; perftest --use_cuda_dmabuf)",
                 detail=f"path: {path}; modules: {mods}")


def ring(paths: list[dict[str, Any]], roce: bool) -> list[tuple[str, list[str], list[str]]]:
    """(name, server argv, client argv) around the ring of ports: i serves, i+1 connects."""
    out = []
    for i, srv in enumerate(paths):
        cli = paths[(i + 1) % len(paths)]
        port = BASE_PORT + i
        target = srv["address"] if roce else "localhost"
        out.append((f"{srv['device']}->{cli['device']}",
                    write_bw(srv["device"], srv["gpu"], port, roce, ib_port=srv["port"]),
                    write_bw(cli["device"], cli["gpu"], port, roce, server=target,
                             ib_port=cli["port"])))
    return out


def concurrent_script(pairs: list[tuple[str, list[str], list[str]]]) -> str:
    """Every server, then every client at once; each client's output after a marker."""
    lines = ["set -u", 'd=$(mktemp -d)', "trap 'rm -rf \"$d\"' EXIT"]
    for i, (_, srv, _) in enumerate(pairs):
        lines.append(f"{shlex.join(srv)} > \"$d/s{i}\" 2>&1 &")
    lines.append("sleep 2")
    for i, (_, _, cli) in enumerate(pairs):
        lines.append(f"{shlex.join(cli)} > \"$d/c{i}\" 2>&1 &")
    lines.append("wait")
    for i, (name, _, _) in enumerate(pairs):
        lines.append(f"echo '{MARK} {name}'; cat \"$d/c{i}\"")
    return "\n".join(lines) + "\n"


def split_marked(text: str) -> dict[str, str]:
    """The sections of a concurrent run, by marker (pure)."""
    out: dict[str, list[str]] = {}
    key = None
    for ln in text.splitlines():
        if ln.startswith(MARK):
            key = ln[len(MARK):].strip()
            out[key] = []
        elif key is not None:
            out[key].append(ln)
    return {k: "\n".join(v) + "\n" for k, v in out.items()}


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
        paths = port_paths(ctx.plan)
        if len(paths) < 2:
            raise InputError(f"{ctx.plan.node}: gpudirect needs two compute ports in the "
                             f"fabric addresses of profile {ctx.plan.profile}")
        pairs = ring(paths, ctx.plan.roce)
        cmds = {"counters-before": command(["sh", "-c", COUNTER_CMD], timeout=15)}
        cmds.update({name: command(cli, timeout=60, server=srv, server_wait=1.0)
                     for name, srv, cli in pairs})
        cmds[ALL] = command(["sh", "-c", concurrent_script(pairs)], timeout=120)
        cmds["counters-after"] = command(["sh", "-c", COUNTER_CMD], timeout=15)
        return {"facts": ["modules", "rdma"], "tools": ["ib_write_bw", "numactl"],
                "commands": cmds}

    def measurements(self, data: Collected, plan: NodePlan) -> list[Measurement]:
        out = [gpudirect_path_record(plan, data.facts.get("modules", {}), self.name)]
        if "ib_write_bw" in data.tools and data.tools["ib_write_bw"] is None:
            return [*out, exact(plan, "tool_present", 0, 1, check=self.name,
                                source="perftest is needed for GPUDirect checks",
                                detail="ib_write_bw: not installed")]
        for name, c in data.commands.items():
            if c.get("missing"):
                out.append(exact(plan, "tool_present", 0, 1, check=self.name,
                                 source="perftest is needed for GPUDirect checks",
                                 detail=f"{c['missing']}: not installed"))
                continue
            text = c.get("stdout") or ""
            if name.startswith("counters-"):
                continue
            if name == ALL:
                out += self._aggregate(text, plan, data)
                continue
            out += self._one(text, name, plan, stderr=c.get("stderr") or "",
                             pinned=numa_note(data, name.split("->")))
        return out + self._counter_deltas(data, plan)

    def _counter_deltas(self, data: Collected, plan: NodePlan) -> list[Measurement]:
        before = counter_values(data.output("counters-before") or "")
        after = counter_values(data.output("counters-after") or "")
        compute = {(p["device"], str(p["port"])) for p in port_paths(plan)}
        out = []
        for key in sorted(after):
            dev, port, name = key
            if (dev, port) not in compute or key not in before:
                continue
            inc = ib_counters.increase(name, before[key], after[key])
            detail = f"{dev} port {port} {name}: {before[key]} -> {after[key]}" + (
                f" ({inc.note})" if inc.note else "")
            metric, value = ("ib_counter_delta", float(inc.value)) if inc.value is not None \
                else ("ib_counter_saturated", 1.0)
            out.append(Measurement(node=plan.node, metric=metric, value=value, max=0.0,
                                   unit="count" if inc.value is not None else "bool",
                                   check=self.name, profile=plan.profile, peer=f"{dev}/{port}",
                                   source=ib_counters.SOURCE, detail=detail))
        return out

    def _one(self, text: str, name: str, plan: NodePlan, when: str = "",
             stderr: str = "", pinned: str = "") -> list[Measurement]:
        try:
            result = parser("perftest").parse(text, node=plan.node,
                                              source_name=f"{plan.node}:{name}")
        except InputError as exc:  # no bandwidth: this path failed, not the whole run
            said = " | ".join(ln.strip() for ln in f"{text}\n{stderr}".splitlines()
                              if ln.strip())
            return [exact(plan, "tool_ran_ok", 0, 1, check=self.name, peer=name,
                          source="ib_write_bw on GPU memory reports a bandwidth",
                          detail=f"{name}{', ' + when if when else ''}: {exc.message}; "
                                 f"ib_write_bw said: {said[-240:] or 'nothing'}")]
        recs = [r for r in parser("perftest").measurements(result, check=self.name)
                if r.metric != "ib_bw_by_size"]
        when = "; ".join(w for w in (when, pinned) if w)
        return annotate(plan, [_with_peer(r, name, when) for r in recs], self.name)

    def _aggregate(self, text: str, plan: NodePlan, data: Collected) -> list[Measurement]:
        """Each port while every port runs, and the node's sum against n x the floor."""
        out: list[Measurement] = []
        total = 0.0
        sections = split_marked(text)
        for name, section in sections.items():
            recs = self._one(section, name, plan, when="all ports at once",
                             pinned=numa_note(data, name.split("->")))
            out += recs
            total += sum(r.value for r in recs if r.metric == "gpudirect_bw")
        n = len(port_paths(plan))
        t = plan.threshold("gpudirect_bw")
        if t is not None and n:
            out.append(judged(plan, "gpudirect_bw", total / n, check=self.name,
                              metric="gpudirect_bw_aggregate",
                              detail=f"{total:g} Gb/s over {n} ports at once "
                                     f"({len(sections)} reported), per port"))
        return out


def _with_peer(r: Measurement, pair: str, when: str = "") -> Measurement:
    where = f"{pair} ({when})" if when else pair
    return replace(r, peer=r.peer or pair.split("->")[0],
                   detail=f"{where}: {r.detail or ''}".strip())


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
        from provision.expectations import plan_site

        plans = plan_site(ctx.site)
        out = []
        for a, b in ring_pairs(list(ctx.nodes)):
            pa, pb = plans.for_node(a), plans.for_node(b)
            mine, theirs = port_paths(pa), port_paths(pb)
            if not mine or not theirs:
                continue
            gpu = pa.gpu_count > 0
            servers, clients = [], []
            # every rail: port k of a serves, port k of b connects (to a's rail IP on RoCE,
            # to a's name for the out-of-band exchange on InfiniBand)
            for k, (s, c) in enumerate(zip(mine, theirs, strict=False)):
                port = BASE_PORT + k
                servers.append(shlex.join(write_bw(s["device"], s["gpu"] if gpu else None,
                                                   port, pa.roce, ib_port=s["port"])) + " &")
                target = s["address"] if pa.roce else a
                clients.append(f"echo '{MARK} {s['rail']}'; " + shlex.join(write_bw(
                    c["device"], c["gpu"] if gpu else None, port, pa.roce, server=target,
                    ib_port=c["port"])))
            # task 0 (first node) serves every rail, task 1 connects to each in turn
            script = (f"if [ \"$SLURM_PROCID\" = 0 ]; then {' '.join(servers)} wait; "
                      f"else sleep 3; {'; '.join(clients)}; fi")
            argv = srun_argv(SrunOptions(nodes=(a, b), ntasks_per_node=1, exclusive=True,
                                         gpus_per_node=pa.gpu_count,
                                         reservation=ctx.reservation,
                                         time_limit_s=self.timeout(ctx),
                                         job_name="forge-rdma-pair",
                                         extra=("--label",)), ["sh", "-c", script])
            out.append(Invocation(f"{a}+{b}", tuple(argv), nodes=(a, b)))
        return out

    def parse(self, raw: Raw) -> tuple[tuple[str, ...], dict[str, Any]]:
        # srun --label: "1: line" is the client's side, one section per rail
        node = raw.nodes[0] if raw.nodes else raw.key
        client = "\n".join(ln.split(": ", 1)[1] for ln in raw.stdout.splitlines()
                           if ln.startswith("1: ") or ln.startswith(" 1: "))
        sections = split_marked(client) or {"rail?": raw.stdout}
        return raw.nodes, {rail: parser("perftest").parse(text, node=node,
                                                          source_name=f"{raw.key}:{rail}")
                           for rail, text in sections.items()}

    def cluster_measurements(self, data: tuple[tuple[str, ...], dict[str, Any]],
                             plan: SitePlan) -> list[Measurement]:
        nodes, results = data
        node_plan = plan.for_node(nodes[0])
        recs = []
        for rail, result in results.items():
            recs += [replace(r, node=nodes[0], peer=nodes[1] if len(nodes) > 1 else r.peer,
                             detail=f"{rail}: {r.detail or ''}".strip())
                     for r in parser("perftest").measurements(result, check=self.name)
                     if r.metric != "ib_bw_by_size"]
        return annotate(node_plan, recs, self.name, rules="gpudirect")

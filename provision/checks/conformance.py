"""Catalog 1, conformance: GPUs, NICs, PCIe links, locality, CPUs and memory against the profile.

Facts come from /proc and /sys through the collector (no tools needed for
CPUs, memory and RDMA devices), GPU facts from ``nvidia-smi --query-gpu``
CSV and locality from ``nvidia-smi topo -m``, both read by the shared
parsers. Every reading is judged against the node's plan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from provision.checks import gpu_state, pcie_acs
from provision.checks.base import Context, Needs
from provision.checks.collected import Collected, CollectorCheck, command
from provision.checks.options import option
from provision.checks.reference import exact, judged
from provision.expectations import NodePlan
from provision.measurement import Measurement
from provision.parsers import get as parser
from provision.parsers.gpu_info import GpuInfo

QUERY_FIELDS = (
    "index,name,uuid,serial,pci.bus_id,driver_version,vbios_version,persistence_mode,"
    "ecc.mode.current,memory.total,pcie.link.gen.current,pcie.link.gen.max,"
    "pcie.link.width.current,pcie.link.width.max")
#: topo -m distances at which a NIC counts as local to a GPU: same PCIe switch (PIX/PXB)
LOCAL_DISTANCE = 3
_DIST = {"X": 0, "NV": 1, "PIX": 2, "PXB": 3, "PHB": 4, "NODE": 5, "SYS": 6}


def sysfs_rate_gbps(text: str | None) -> float | None:
    """``"200 Gb/sec (2X NDR)"`` -> 200.0."""
    m = re.match(r"\s*([\d.]+)\s*Gb/sec", text or "")
    return float(m.group(1)) if m else None


def pcie_gen(speed: str | None) -> int | None:
    """sysfs ``current_link_speed`` (``"32.0 GT/s PCIe"``) -> generation 5."""
    m = re.match(r"\s*([\d.]+)\s*GT/s", speed or "")
    if not m:
        return None
    return {2.5: 1, 5.0: 2, 8.0: 3, 16.0: 4, 32.0: 5, 64.0: 6}.get(float(m.group(1)))


def adapter(pci_address: str) -> str:
    """The adapter of a PCI function: ``0000:17:00.1`` -> ``0000:17:00``."""
    return pci_address.rsplit(".", 1)[0]


def _profile_src(plan: NodePlan, what: str) -> str:
    return f"profile {plan.profile}: {what}"


@dataclass(frozen=True)
class ConformanceOptions:
    acs: str = option("judge", choices=("judge", "record"),
                      help="the P2P path of GPUs and NICs (PCIe ACS on the bridges above them, "
                           "the IOMMU translating their DMA): judge (must be off), or record "
                           "only, for nodes that keep them on by design (SR-IOV VFs given to "
                           "VMs, common acs_disable: false)")
    mig: str = option("disabled", choices=("disabled", "enabled", "record"),
                      help="the MIG mode every GPU must be in, now and after its next reset: "
                           "disabled (whole GPUs, as NCCL and Slurm's GRES use them), enabled "
                           "(a partition sliced by design), or record only")
    power_limit: str = option("default", pattern=r"default|record|\d+(\.\d+)?",
                              help="each GPU's enforced power limit: must equal the driver's "
                                   "default (a cap set with nvidia-smi -pl stays until the "
                                   "driver reloads), the site's cap in watts (e.g. 350), or "
                                   "record only")


class Conformance(CollectorCheck):
    name = "conformance"
    description = ("GPU count/model/memory/driver/VBIOS/persistence/ECC/PCIe, state left "
                   "behind (ECC or MIG pending, MIG, power cap, recovery action), VBIOS and "
                   "infoROM sameness, NIC ports/state/"
                   "rate/link layer/firmware, GPU-NIC locality, PCIe ACS above GPUs and NICs, CPUs "
                   "and memory vs the profile")
    tags = ("conformance", "inventory", "no-gpu")
    needs = Needs()
    timeout_s = 120.0
    Options = ConformanceOptions

    def request(self, ctx: Context) -> dict[str, Any]:
        assert ctx.plan is not None
        req: dict[str, Any] = {"facts": ["cpu", "memory", "rdma", "pci_gpus", "modules"],
                               "tools": [], "commands": {}, "expect": {
                                   "driver_branch": ctx.site.stack.version_map.get(
                                       "driver_branch"),
                                   "acs": ctx.options.acs,
                                   **gpu_state.expectations(ctx.site, ctx.options.mig,
                                                            ctx.options.power_limit)}}
        if ctx.plan.gpu_count:
            req["tools"] = ["nvidia-smi", "lspci"]
            req["commands"] = {
                "query-gpu": command(["nvidia-smi", f"--query-gpu={QUERY_FIELDS}",
                                      "--format=csv"]),
                "topo": command(["nvidia-smi", "topo", "-m"]),
                "lspci": command(pcie_acs.command()),
                gpu_state.COMMAND: gpu_state.request(),
            }
        return req

    def sanity(self, data: Collected) -> list[str]:
        problems = []
        if not data.facts.get("cpu", {}).get("logical"):
            problems.append("no CPU count in /proc")
        if not data.facts.get("memory", {}).get("mem_total_kib"):
            problems.append("no MemTotal in /proc/meminfo")
        return problems

    def measurements(self, data: Collected, plan: NodePlan) -> list[Measurement]:
        out = self._host(data, plan)
        out += self._nics(data, plan)
        if plan.gpu_count:
            gpus = self._query_gpus(data, plan)
            out += self._gpus(data, plan, gpus)
            if gpus is not None:
                out += gpu_state.records(data, plan, self.name)
            names = pcie_acs.gpu_names_by_address(
                {g.index: g.bus_id for g in gpus or () if g.index is not None})
            judge = data.request.get("expect", {}).get("acs", "judge") == "judge"
            out += pcie_acs.acs_records(data, plan, self.name, names, judge=judge)
            out += pcie_acs.iommu_records(data, plan, self.name, names, judge=judge)
        if plan.golden_fingerprint is not None and (data.output("topo") or "").strip():
            out.append(self._fingerprint(data, plan))
        return out

    @staticmethod
    def _query_gpus(data: Collected, plan: NodePlan) -> tuple[GpuInfo, ...] | None:
        """The GPUs ``nvidia-smi --query-gpu`` listed, or None where it printed nothing."""
        text = data.output("query-gpu")
        if not (text or "").strip():
            return None
        gpus: tuple[GpuInfo, ...] = parser("nvidia-smi-query-gpu").parse(
            text, node=plan.node, source_name=f"{plan.node}:query-gpu").gpus
        return gpus

    # --- the topology against the golden node's, by equality
    def _fingerprint(self, data: Collected, plan: NodePlan) -> Measurement:
        from provision.checks.baseline import differences, fingerprint

        assert plan.golden_fingerprint is not None
        mine = fingerprint(data.output("topo") or "", plan.node)
        diff = differences(plan.golden_fingerprint, mine)
        return exact(plan, "topology_match", 0 if diff else 1, 1, check=self.name,
                     source=f"golden node {plan.golden_node}: nvidia-smi topo -m fingerprint "
                            f"(GPU-GPU, GPU-NIC, NUMA) must be equal",
                     detail="; ".join(diff) if diff else "equal to the golden node")

    # --- CPUs and memory
    def _host(self, data: Collected, plan: NodePlan) -> list[Measurement]:
        cpu = data.facts["cpu"]
        kib = data.facts["memory"]["mem_total_kib"]
        models = ", ".join(cpu.get("models") or []) or "unknown CPU"
        return [
            judged(plan, "cpu_count", cpu["online"], check=self.name,
                   detail=f"{cpu['online']} online of {cpu['logical']} logical ({models})"),
            judged(plan, "host_memory", round(kib / 2**20, 2), check=self.name,
                   detail=f"MemTotal {kib} kB"),
        ]

    # --- NICs from sysfs
    def _nics(self, data: Collected, plan: NodePlan) -> list[Measurement]:
        devices = [d for d in data.facts.get("rdma", []) if d["name"].startswith("mlx")]
        adapters = sorted({adapter(d["pci"]["address"]) for d in devices})
        want = sum(int(n["count"]) for n in plan.nics)
        out: list[Measurement] = []
        if want:
            out.append(judged(plan, "nic_count", len(adapters), check=self.name,
                              detail=f"{len(adapters)} adapters, {len(devices)} RDMA devices"))
        else:
            out.append(exact(plan, "nic_count", len(adapters), 0, check=self.name,
                             source=_profile_src(plan, "no RDMA adapters"),
                             detail=f"{len(devices)} RDMA devices found"))
        compute = [n for n in plan.nics if n["purpose"] == "compute"]
        by_name = {d["name"]: d for d in devices}
        for dev_name in plan.fabric_devices:
            d = by_name.get(dev_name)
            if d is None:
                out.append(exact(plan, "nic_port_up", 0, 1, check=self.name,
                                 source=_profile_src(plan, "compute fabric device"),
                                 detail=f"{dev_name}: device missing"))
                continue
            out += self._ports(d, plan, compute[0] if compute else None)
        return out

    def _ports(self, d: dict[str, Any], plan: NodePlan,
               spec: dict[str, Any] | None) -> list[Measurement]:
        out: list[Measurement] = []
        name = d["name"]
        src = _profile_src(plan, f"{spec['model']}" if spec else "compute NIC")
        for p in d["ports"]:
            where = f"{name}/{p['port']} fw {d.get('fw_ver')} {d.get('board_id') or ''}".strip()
            up = 1 if (p.get("state") or "").endswith("ACTIVE") else 0
            out.append(exact(plan, "nic_port_up", up, 1, check=self.name, source=src,
                             detail=f"{where}: {p.get('state')}, {p.get('phys_state')}"))
            rate = sysfs_rate_gbps(p.get("rate"))
            if rate is not None:
                out.append(judged(plan, "nic_port_rate", rate, check=self.name,
                                  detail=f"{where}: {p.get('rate')}"))
            if spec is not None:
                ok = 1 if p.get("link_layer") == spec["link_layer"] else 0
                out.append(exact(plan, "nic_link_layer_ok", ok, 1, check=self.name, source=src,
                                 detail=f"{where}: {p.get('link_layer')} "
                                        f"(expected {spec['link_layer']})"))
        pci = d["pci"]
        if spec is not None:
            gen = pcie_gen(pci.get("current_link_speed"))
            width = int(pci["current_link_width"]) if (pci.get("current_link_width") or
                                                        "").isdigit() else None
            pcie_src = _profile_src(plan, f"{spec['model']} PCIe Gen{spec['pcie_gen']} "
                                          f"x{spec['pcie_width']}")
            if gen is not None:
                out.append(exact(plan, "nic_pcie_link_gen_ok", int(gen >= spec["pcie_gen"]), 1,
                                 check=self.name, source=pcie_src,
                                 detail=f"{name} {pci['address']}: {pci.get('current_link_speed')}"
                                        f" (max {pci.get('max_link_speed')})"))
            if width is not None:
                out.append(exact(plan, "nic_pcie_link_width_ok",
                                 int(width >= spec["pcie_width"]), 1, check=self.name,
                                 source=pcie_src,
                                 detail=f"{name} {pci['address']}: x{width} "
                                        f"(max x{pci.get('max_link_width')})"))
        return out

    # --- GPUs
    def _gpus(self, data: Collected, plan: NodePlan,
              gpus: tuple[GpuInfo, ...] | None) -> list[Measurement]:
        """Records of the GPUs ``gpus`` (:meth:`_query_gpus`) against the profile."""
        out: list[Measurement] = []
        if data.missing("query-gpu"):
            return [exact(plan, "tool_present", 0, 1, check=self.name,
                          source=_profile_src(plan, f"{plan.gpu_count}x {plan.gpu_model}"),
                          detail="nvidia-smi: not installed")]
        pci_gpus = len(data.facts.get("pci_gpus", []))
        if gpus is None:
            err = (data.commands.get("query-gpu") or {}).get("stderr", "")
            return [judged(plan, "gpu_count", 0, check=self.name,
                           detail=f"nvidia-smi saw no GPU ({err.strip()[:150]}); "
                                  f"{pci_gpus} on the PCI bus")]
        out.append(judged(plan, "gpu_count", len(gpus), check=self.name,
                          detail=f"{len(gpus)} seen by the driver, {pci_gpus} on the PCI bus"))
        model_src = _profile_src(plan, f"{plan.gpu_count}x {plan.gpu_model}")
        out.append(exact(plan, "gpu_missing", int(pci_gpus > len(gpus)), 0, check=self.name,
                         source=model_src,
                         detail=f"{pci_gpus} NVIDIA GPUs on the PCI bus, {len(gpus)} "
                                "visible to the driver"))
        branch = str(data.request.get("expect", {}).get("driver_branch") or "")
        for g in gpus:
            kw: dict[str, Any] = {"gpu": g.index, "model": g.name, "uuid": g.uuid,
                                  "serial": g.serial, "check": self.name}
            want = (plan.gpu_model or "").lower()
            out.append(exact(plan, "gpu_model_ok", int(bool(want) and want in (g.name or
                                                                             "").lower()), 1,
                             source=model_src, detail=f"{g.name}; VBIOS {g.vbios}; "
                                                      f"driver {g.driver_version}",
                             **kw))
            if branch and g.driver_version:
                out.append(exact(plan, "gpu_driver_ok",
                                 int(g.driver_version.split(".")[0] == branch), 1,
                                 source=f"spec stack.versions.driver_branch {branch}",
                                 detail=f"driver {g.driver_version}", **kw))
            if g.memory_total_mib is not None:
                out.append(judged(plan, "gpu_memory_total", g.memory_total_mib, **kw))
            # an idle GPU's link trains down (nvidia-smi(1): current values "may be reduced
            # when the GPU is not in use"): judge the slot's maximum here, the trained link
            # under load in the hbm check (pcie_link_gen_load)
            gen = g.pcie_gen_max if g.pcie_gen_max is not None else g.pcie_gen
            if gen is not None:
                out.append(judged(plan, "pcie_link_gen", gen, **kw,
                                  detail=f"max Gen{g.pcie_gen_max}, current (idle) "
                                         f"Gen{g.pcie_gen}"))
            width = g.pcie_width_max if g.pcie_width_max is not None else g.pcie_width
            if width is not None:
                out.append(judged(plan, "pcie_link_width", width, **kw,
                                  detail=f"max x{g.pcie_width_max}, current (idle) "
                                         f"x{g.pcie_width}"))
            for metric, value in (("gpu_persistence_mode", g.persistence_mode),
                                  ("gpu_ecc_mode", g.ecc_mode)):
                if value is not None:
                    out.append(exact(plan, metric, int(value), 1, source=model_src,
                                     **kw))
        out += self._locality(data, plan)
        return out

    def _locality(self, data: Collected, plan: NodePlan) -> list[Measurement]:
        text = data.output("topo")
        if not text:
            return []
        topo = parser("nvidia-smi-topo").parse(text, node=plan.node,
                                               source_name=f"{plan.node}:topo")
        out: list[Measurement] = []
        column = {topo.nic_name(c): c for c in topo.devices if not c.startswith("GPU")}
        compute = [n for n in plan.nics if n["purpose"] == "compute"]
        devices = list(plan.fabric_devices)
        i = 0
        for spec in compute:
            for _ in range(int(spec["count"])):
                ports = devices[i * int(spec["ports"]):(i + 1) * int(spec["ports"])]
                affinity = spec["gpu_affinity"][i] if i < len(spec["gpu_affinity"]) else []
                i += 1
                for dev in ports:  # every port: each is its own PCI function
                    # without a NIC Legend, NICk is taken to be mlx5_k (nvidia-smi's order)
                    m = re.fullmatch(r"mlx5_(\d+)", dev)
                    col = column.get(dev) or (column.get(f"NIC{m.group(1)}") if m else None)
                    for gpu in affinity:
                        kind = topo.link(f"GPU{gpu}", col) if col else None
                        dist = _DIST.get(re.sub(r"\d+$", "", kind or ""), 9)
                        out.append(Measurement(
                            node=plan.node, metric="gpu_nic_distance", value=float(dist),
                            gpu=gpu, unit="rank", max=float(LOCAL_DISTANCE),
                            expected=float(LOCAL_DISTANCE), check=self.name, peer=dev,
                            profile=plan.profile,
                            source=_profile_src(plan, f"GPU{gpu} shares a PCIe switch with "
                                                      f"{dev} (PIX/PXB)"),
                            detail=f"GPU{gpu}-{dev}: {kind or 'not in topo -m'}"))
            # storage and other NICs carry no GPU affinity
        return out



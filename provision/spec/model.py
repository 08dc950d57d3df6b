"""The validated site: frozen dataclasses handed from the spec to every later stage."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from operator import attrgetter
from pathlib import Path
from typing import Any, Literal

from provision.errors import InputError
from provision.nodes import expand

Role = Literal["controller", "login", "compute"]


class Value:
    """Equality, hash and repr of the frozen model classes, as ``@dataclass`` would write them.

    ``@dataclass`` compiles each generated method from source when the module is
    imported (six per frozen class, most of the module's import time, paid by
    every ``forge`` command that reads a spec). The model classes take
    ``eq=False, repr=False`` and inherit these three instead, with the same
    results: equal when of the same class and equal in every compared field, the
    hash of those fields, ``Name(field=value, ...)``. ``tests/spec/test_model_value.py``
    compares them with what ``@dataclass`` generates.
    """

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            key = _keys(type(self))[0]
            return bool(key(self) == key(other))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(_keys(type(self))[1](self))

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}"
                          for f in fields(self) if f.repr)  # type: ignore[arg-type]
        return f"{type(self).__qualname__}({shown})"


_Getter = Callable[[Any], tuple[Any, ...]]
_KEYS: dict[type, tuple[_Getter, _Getter]] = {}


def _keys(cls: type) -> tuple[_Getter, _Getter]:
    """(the compared fields, the hashed fields) of ``cls``, each read as one tuple."""
    keys = _KEYS.get(cls)
    if keys is None:
        every = fields(cls)
        compared = [f.name for f in every if f.compare]
        hashed = [f.name for f in every if (f.compare if f.hash is None else f.hash)]
        keys = _KEYS[cls] = (_tuple_getter(compared), _tuple_getter(hashed))
    return keys


def _tuple_getter(names: list[str]) -> _Getter:
    """The fields ``names`` of an object as one tuple (attrgetter's C speed from two on)."""
    if len(names) >= 2:
        return attrgetter(*names)
    return lambda obj: tuple(getattr(obj, n) for n in names)


@dataclass(frozen=True, eq=False, repr=False)
class PhysicalFigure(Value):
    """A number from a datasheet or the reference architecture, with where it comes from."""

    name: str
    value: float
    unit: str
    source: str


@dataclass(frozen=True, eq=False, repr=False)
class GpuSpec(Value):
    """A GPU model as one node holds it: count, memory, NVLink, PCIe link and power."""

    model: str
    count: int
    memory_gb: float
    memory_bandwidth_gbs: float
    nvlink_pairs: tuple[tuple[int, int], ...]
    nvlink_links_per_gpu: int
    nvlink_link_speed_gbs: float
    nvlink_bridge_bandwidth_gbs: float
    pcie_gen: int
    pcie_width: int
    bf16_dense_tflops: float
    power_limit_w: float
    fabric_manager: bool = False
    nvml_name: str = ""                       # nvmlDeviceGetName(), e.g. "NVIDIA H100 NVL"
    cpu_sockets: tuple[int, ...] = ()         # the CPU socket each GPU index hangs off

    @property
    def memory_mib(self) -> float:
        return self.memory_gb * 1e9 / 2**20


@dataclass(frozen=True, eq=False, repr=False)
class NicSpec(Value):
    """A network adapter model and what it is for (compute, storage or north-south)."""

    model: str
    count: int
    ports_per_nic: int
    rate_gbps: float
    link_layer: Literal["InfiniBand", "Ethernet"]
    purpose: Literal["compute", "storage", "north-south"]
    pcie_gen: int
    pcie_width: int
    gpu_affinity: tuple[tuple[int, ...], ...] = ()

    @property
    def ports(self) -> int:
        return self.count * self.ports_per_nic


@dataclass(frozen=True, eq=False, repr=False)
class CpuSpec(Value):
    """The host CPUs of one node."""

    model: str
    sockets: int
    cores_per_socket: int
    threads_per_core: int = 1

    @property
    def cores(self) -> int:
        return self.sockets * self.cores_per_socket


@dataclass(frozen=True, eq=False, repr=False)
class RailPort(Value):
    """One compute rail's port by identity: its PCI function, RDMA device and netdev.

    Recorded from a golden node (``forge rails record``), so roles and checks
    never rely on ``mlx5_<i>`` enumeration order (a storage or Ethernet adapter
    can enumerate between the compute ones).
    """

    pci: str              # 0000:1a:00.0
    hca: str              # mlx5_0
    netdev: str = ""      # ibp26s0


@dataclass(frozen=True, eq=False, repr=False)
class HardwareProfile(Value):
    """What one kind of node holds (GPUs, NICs, CPUs, memory), each figure with its source."""

    name: str
    description: str
    server: str
    gpu: GpuSpec | None
    nics: tuple[NicSpec, ...]
    cpu: CpuSpec
    memory_gib: float
    operating_mode: str = ""
    container: bool = False
    fake_gpus: int = 0
    sources: tuple[tuple[str, str], ...] = ()
    rail_map: tuple[RailPort, ...] = ()   # compute port i -> its identity

    def source(self, key: str) -> str:
        """The source of a figure: its own entry, else its section's, else the profile's."""
        table = dict(self.sources)
        section = key.split(".")[0]
        return (table.get(key) or table.get(key.split(".")[-1]) or table.get(section)
                or table.get("_", "unspecified"))

    @property
    def compute_nics(self) -> tuple[NicSpec, ...]:
        return tuple(n for n in self.nics if n.purpose == "compute")

    @property
    def compute_ports(self) -> int:
        return sum(n.ports for n in self.compute_nics)

    @property
    def fabric_bandwidth_gbps(self) -> float:
        """Aggregate compute-fabric line rate of one node (Gb/s)."""
        return sum(n.ports * n.rate_gbps for n in self.compute_nics)

    def figure(self, name: str) -> PhysicalFigure | None:
        """A physical figure by dotted name (``gpu.memory_bandwidth_gbs``), or None if absent."""
        return _figure(self, name)


def _figure(p: HardwareProfile, name: str) -> PhysicalFigure | None:
    units = {
        "memory_gb": "GB", "memory_mib": "MiB", "memory_bandwidth_gbs": "GB/s",
        "nvlink_links_per_gpu": "links", "nvlink_link_speed_gbs": "GB/s",
        "nvlink_bridge_bandwidth_gbs": "GB/s", "pcie_gen": "gen", "pcie_width": "lanes",
        "bf16_dense_tflops": "TFLOP/s", "power_limit_w": "W", "count": "GPUs",
        "pcie_bandwidth_gbs": "GB/s",
    }
    section, _, attr = name.partition(".")
    if section == "gpu":
        if p.gpu is None:
            return None
        if attr == "pcie_bandwidth_gbs":
            value = pcie_bandwidth_gbs(p.gpu.pcie_gen, p.gpu.pcie_width)
            src = (f"PCIe Gen{p.gpu.pcie_gen} x{p.gpu.pcie_width} per direction after "
                   "128b/130b encoding (PCI-SIG base specification)")
            return PhysicalFigure(name, value, "GB/s", src)
        if attr == "nvlink_links_per_gpu" and not p.gpu.nvlink_pairs:
            return None
        raw = getattr(p.gpu, attr, None)
        if raw is None:
            return None
        return PhysicalFigure(name, float(raw), units.get(attr, ""),
                              p.source(f"gpu.{attr}"))
    if section == "nic":
        nics = p.compute_nics
        if not nics:
            return None
        n = nics[0]
        if attr == "rate_gbps":
            return PhysicalFigure(name, n.rate_gbps, "Gb/s", p.source(f"nic.{n.model}"))
        if attr == "port_bandwidth_gbs":
            return PhysicalFigure(name, n.rate_gbps / 8, "GB/s",
                                  f"one {n.rate_gbps:g} Gb/s port / 8 bits "
                                  f"({p.source(f'nic.{n.model}')})")
        if attr == "count":
            return PhysicalFigure(name, float(sum(x.count for x in p.nics)), "NICs",
                                  p.source("nics"))
        return None
    if section == "node":
        if attr == "fabric_bandwidth_gbs" and p.compute_nics:
            n = p.compute_nics[0]
            return PhysicalFigure(name, p.fabric_bandwidth_gbps / 8, "GB/s",
                                  f"{p.compute_ports} compute ports x {n.rate_gbps:g} Gb/s "
                                  f"({p.source(f'nic.{n.model}')})")
        if attr == "memory_gib":
            return PhysicalFigure(name, p.memory_gib, "GiB", p.source("memory_gib"))
        if attr == "cpu_cores":
            return PhysicalFigure(name, float(p.cpu.cores), "cores", p.source("cpu"))
    return None


def pcie_bandwidth_gbs(gen: int, width: int) -> float:
    """Usable one-direction bandwidth of a PCIe link in GB/s."""
    gts = {1: 2.5, 2: 5.0, 3: 8.0, 4: 16.0, 5: 32.0, 6: 64.0}.get(gen, 0.0)
    efficiency = 0.8 if gen <= 2 else 128 / 130
    return round(gts * width * efficiency / 8, 2)


@dataclass(frozen=True, eq=False, repr=False)
class FabricAddress(Value):
    """One compute-fabric port of a node: its device, rail, address and netdev."""

    device: str
    port: int
    rail: str
    address: str
    prefix: int
    netdev: str
    pci: str = ""          # from the profile's rail map; empty when it has none


@dataclass(frozen=True, eq=False, repr=False)
class Node(Value):
    """One node of the site: its group, roles, rack, hardware profile and addresses."""

    name: str
    group: str
    roles: tuple[str, ...]
    rack: str
    profile: HardwareProfile
    management_ip: str | None
    ssh_host: str
    ssh_port: int
    bmc_address: str | None = None
    macs: tuple[tuple[str, str], ...] = ()
    serial: str | None = None
    fabric_addresses: tuple[FabricAddress, ...] = ()

    @property
    def mac_map(self) -> dict[str, str]:
        return dict(self.macs)


@dataclass(frozen=True, eq=False, repr=False)
class SecretRef(Value):
    """Where a secret lives (environment variable, file or vault), never its value."""

    kind: Literal["env", "file", "vault"]
    location: str
    key: str | None = None

    def describe(self) -> str:
        return f"{self.kind}:{self.location}" + (f"#{self.key}" if self.key else "")


@dataclass(frozen=True, eq=False, repr=False)
class Access(Value):
    """How forge reaches the nodes over SSH."""

    user: str = "root"
    ssh_key: str | None = None
    known_hosts: str | None = None
    become: bool = False


@dataclass(frozen=True, eq=False, repr=False)
class BmcSettings(Value):
    """How forge reaches the nodes' BMCs over Redfish, and the firmware they should run."""

    username: str = "USERID"
    password: SecretRef | None = None
    scheme: str = "https"
    verify_tls: bool = True
    ca_bundle: str | None = None
    pinned_sha256: str | None = None
    firmware_baseline: tuple[tuple[str, str], ...] = ()
    #: UEFI attributes every node must show, as the XCC names them (Systems/1/Bios)
    bios_baseline: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, eq=False, repr=False)
class Rail(Value):
    """One compute rail: its name and subnet."""

    name: str
    subnet: str


@dataclass(frozen=True, eq=False, repr=False)
class RoceSettings(Value):
    """RoCE traffic settings: PFC priority, trust mode, DSCP and ECN."""

    pfc_priority: int = 3
    trust: str = "dscp"
    dscp: int = 26
    cnp_dscp: int = 48
    ecn: bool = True
    roce_mode: str = "v2"
    tos: int = 106


@dataclass(frozen=True, eq=False, repr=False)
class Fabric(Value):
    """The compute fabric: InfiniBand, RoCE or none, its MTU, subnet manager and rails."""

    type: Literal["infiniband", "roce", "none"]
    mtu: int
    subnet_manager: str
    rails: tuple[Rail, ...]
    roce: RoceSettings | None
    switches: tuple[dict[str, Any], ...] = ()
    opensm_hosts: str | None = None


@dataclass(frozen=True, eq=False, repr=False)
class PackageSources(Value):
    """Where packages come from: the public repositories or a site mirror."""

    mode: Literal["public", "mirror"] = "public"
    urls: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, eq=False, repr=False)
class Stack(Value):
    """The software stack: scheduler, pinned versions, package sources and their settings."""

    scheduler: Literal["slurm", "kubernetes"]
    versions: tuple[tuple[str, str], ...]
    sources: PackageSources
    slurm: tuple[tuple[str, Any], ...] = ()
    kubernetes: tuple[tuple[str, Any], ...] = ()
    checksums: tuple[tuple[str, Any], ...] = ()
    gpudirect_mode: str = "auto"          # auto | dmabuf | peermem (gpudirect role)
    hold_os_updates: bool = True          # kernel hold + no unattended upgrades on GPU nodes

    @property
    def version_map(self) -> dict[str, str]:
        return dict(self.versions)


@dataclass(frozen=True, eq=False, repr=False)
class Site(Value):
    """The validated site spec: every node with its hardware, the fabric, the stack."""

    name: str
    domain: str
    size: str
    spec_version: int
    source: str
    nodes: tuple[Node, ...]
    profiles: tuple[HardwareProfile, ...]
    networks: tuple[tuple[str, Any], ...]
    fabric: Fabric
    stack: Stack
    access: Access
    bmc: BmcSettings
    acceptance: tuple[tuple[str, Any], ...]
    #: the fully merged spec (presets applied, migrated): what a run directory records
    document: Any = field(default=None, compare=False, hash=False, repr=False)
    base_dir: Path = field(default=Path("."), compare=False, hash=False, repr=False)
    #: the spec's text exactly as the user gave it (read once; the inventory header hashes
    #: it, a run directory keeps it); empty for a site built in code
    text: str = field(default="", compare=False, hash=False, repr=False)

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise InputError(f"node {name!r} is not in site {self.name!r}")

    def select(self, pattern: str | None) -> list[Node]:
        """Nodes named by a node set (all nodes when ``pattern`` is None), in spec order."""
        if not pattern:
            return list(self.nodes)
        wanted = expand(pattern)
        known = {n.name for n in self.nodes}
        missing = [w for w in wanted if w not in known]
        if missing:
            from provision.nodes import fold

            raise InputError(f"--nodes names nodes not in site {self.name!r}: {fold(missing)}")
        want = set(wanted)
        return [n for n in self.nodes if n.name in want]

    def with_role(self, role: str) -> list[Node]:
        return [n for n in self.nodes if role in n.roles]

    @property
    def network_map(self) -> dict[str, Any]:
        return dict(self.networks)

    @property
    def acceptance_map(self) -> dict[str, Any]:
        return dict(self.acceptance)

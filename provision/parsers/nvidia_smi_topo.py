"""``nvidia-smi topo -m`` (and ``topo -p2p``) matrices.

Cells never contain spaces, so rows are split on any whitespace (tabs or
spaces, ANSI underline escapes removed) and matched to the header by
position: first the device columns (``GPU0``, ``NIC0`` or old-style
``mlx5_0``), then CPU Affinity, NUMA Affinity and, on newer drivers,
GPU NUMA ID. NIC names come from the ``NIC Legend`` when present.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from provision.measurement import Measurement
from provision.parsers.base import parse_error, record, require_text, resolve_node

TOOL = "nvidia-smi-topo"
_DEVICE = re.compile(r"^(GPU\d+|NIC\d+|mlx\d+_\d+|mlx5_bond_\d+|\w+_\d+)$")
#: link kinds from closest to farthest; NV# (NVLink) is closer than all of them
DISTANCE = {"X": 0, "NV": 1, "PIX": 2, "PXB": 3, "PHB": 4, "NODE": 5, "SYS": 6}
_P2P = {"OK", "CNS", "GNS", "TNS", "NS", "DR", "U"}


@dataclass(frozen=True)
class TopoLink:
    a: str  # "GPU0", "NIC1"
    b: str
    kind: str  # "NV6", "PIX", "PXB", "PHB", "NODE", "SYS" (or a -p2p status: OK, GNS, ...)

    @property
    def nvlinks(self) -> int:
        m = re.fullmatch(r"NV(\d+)", self.kind)
        return int(m[1]) if m else 0


@dataclass(frozen=True)
class TopoGpu:
    index: int
    cpu_affinity: str | None
    numa_node: int | None
    gpu_numa_id: int | None


@dataclass(frozen=True)
class TopoMatrix:
    node: str
    devices: tuple[str, ...]  # column order: GPU0.., NIC0..
    links: tuple[TopoLink, ...]  # every ordered pair of distinct devices that has a cell
    gpus: tuple[TopoGpu, ...]
    nic_names: tuple[tuple[str, str], ...]  # ("NIC0", "mlx5_0")
    p2p: bool = False  # a ``topo -p2p`` status matrix, not a link-type matrix

    def link(self, a: str, b: str) -> str | None:
        return next((lk.kind for lk in self.links if lk.a == a and lk.b == b), None)

    def nic_name(self, column: str) -> str:
        return dict(self.nic_names).get(column, column)

    def nvlink_pairs(self) -> tuple[tuple[int, int, int], ...]:
        """``(gpu_a, gpu_b, links)`` for every GPU pair joined by NVLink, a < b."""
        return tuple((int(lk.a[3:]), int(lk.b[3:]), lk.nvlinks) for lk in self.links
                     if lk.a.startswith("GPU") and lk.b.startswith("GPU")
                     and int(lk.a[3:]) < int(lk.b[3:]) and lk.nvlinks)

    def closest_nics(self, gpu: int) -> tuple[str, ...]:
        """NIC columns at the smallest PCIe distance from ``GPU<gpu>``."""
        cells = [(DISTANCE.get(re.sub(r"\d+$", "", lk.kind), 9), lk.b) for lk in self.links
                 if lk.a == f"GPU{gpu}" and not lk.b.startswith("GPU")]
        if not cells:
            return ()
        best = min(d for d, _ in cells)
        return tuple(b for d, b in cells if d == best)


def detect(text: str) -> bool:
    return bool(re.search(r"^[^\S\n]*(?:\x1b\[4m)?GPU0\b.*(?:CPU Affinity|GPU1)|"
                          r"^[^\S\n]*GPU0\s+X\b", text, re.M)) or "GNS  = GPU not supported" in text


#: the words topo -m / -p2p print in a cell (X for self, NV# for bonded NVLinks)
_KIND = re.compile(r"^(?:X|SYS|NODE|PHB|PXB|PIX|NV\d+|OK|CNS|GNS|TNS|NS|DR|U)$")


def parse(text: str, *, node: str | None = None, source_name: str = "<stdin>") -> TopoMatrix:
    lines = require_text(TOOL, text, source_name)
    head_at = next((i for i, ln in enumerate(lines) if re.match(r"\s*GPU0\b", ln)
                    and not re.match(r"\s*GPU0\s+X\b", ln)), None)
    if head_at is None:
        raise parse_error(TOOL, source_name, 1, "no header line starting with GPU0")
    header = lines[head_at].replace("CPU Affinity", "CPU_Affinity").replace(
        "NUMA Affinity", "NUMA_Affinity").replace("GPU NUMA ID", "GPU_NUMA_ID").split()
    devices = [h for h in header if _DEVICE.match(h) and h not in ("CPU_Affinity",)]
    extra = header[len(devices):]
    links: list[TopoLink] = []
    gpus: list[TopoGpu] = []
    nic_names: list[tuple[str, str]] = []
    p2p = False
    for i in range(head_at + 1, len(lines)):
        ln = lines[i].strip()
        if not ln:
            continue
        if ln.startswith("Legend") or ln.startswith("NIC Legend"):
            break
        toks = ln.split()
        if toks[0] not in devices:
            continue  # a cut row ('NIC'), a prompt, another tool's line
        cells = toks[1:1 + len(devices)]
        # a row cut by the paste has fewer cells, its last one perhaps cut too ('SY'): only
        # cells that are link kinds are read
        for col, kind in zip(devices, cells, strict=False):
            if col != toks[0] and _KIND.match(kind):
                links.append(TopoLink(toks[0], col, kind))
                p2p = p2p or kind in _P2P
        if toks[0].startswith("GPU"):
            rest = dict(zip(extra, toks[1 + len(devices):], strict=False))
            gpus.append(TopoGpu(int(toks[0][3:]), rest.get("CPU_Affinity"),
                                _int(rest.get("NUMA_Affinity")), _int(rest.get("GPU_NUMA_ID"))))
    for ln in lines:
        if m := re.match(r"\s*(NIC\d+):\s*(\S+)\s*$", ln):
            nic_names.append((m[1], m[2]))
    if not gpus:
        raise parse_error(TOOL, source_name, head_at + 2, "no GPU rows under the header")
    return TopoMatrix(resolve_node(TOOL, source_name, None, node), tuple(devices), tuple(links),
                      tuple(gpus), tuple(nic_names), p2p)


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def measurements(result: TopoMatrix, check: str | None = None) -> list[Measurement]:
    """NVLinks per GPU pair, NUMA node per GPU, PCIe distance per GPU-NIC pair, P2P status."""
    check = check or TOOL
    node = result.node
    out: list[Measurement] = []
    for g in result.gpus:
        if g.numa_node is not None:
            out.append(record(node, "gpu_numa_node", g.numa_node, gpu=g.index, check=check,
                              detail=f"CPU affinity {g.cpu_affinity}"))
    for lk in result.links:
        if not lk.a.startswith("GPU"):
            continue
        a = int(lk.a[3:])
        if lk.b.startswith("GPU"):
            b = int(lk.b[3:])
            if a > b:
                continue
            if result.p2p:
                out.append(record(node, "gpu_p2p_ok", 1 if lk.kind == "OK" else 0, gpu=a,
                                  peer=f"{node}:{b}", check=check, detail=lk.kind))
            else:
                out.append(record(node, "topo_nvlinks", lk.nvlinks, gpu=a, peer=f"{node}:{b}",
                                  check=check, detail=lk.kind))
        else:
            kind = re.sub(r"\d+$", "", lk.kind)
            if kind in DISTANCE:
                nic = result.nic_name(lk.b)
                out.append(record(node, "gpu_nic_distance", DISTANCE[kind], gpu=a,
                                  peer=f"{node}:{nic}", check=check, detail=f"{nic} {lk.kind}"))
    return out

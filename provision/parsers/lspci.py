"""``lspci -vvv`` output: each PCI function's address, PCIe port type and ACS control.

What forge reads from it is PCIe Access Control Services (ACS): a bridge whose ACS Control
has P2P Request Redirect, P2P Completion Redirect or P2P Egress Control set sends peer-to-
peer traffic (GPU to NIC, GPU to GPU) under it up to the root complex. Those three bits are
the ones the kernel itself tests before it allows P2P DMA through a bridge
(``pci_bridge_has_acs_redir`` in ``drivers/pci/p2pdma.c``: ``PCI_ACS_RR | PCI_ACS_CR |
PCI_ACS_EC``); NCCL's troubleshooting guide ("PCI Access Control Services (ACS)") says ACS
must be off on the PCIe switches for GPUDirect. Reading ACS needs the extended
configuration space, which lspci shows only to root: run as another user, every
function's capabilities read ``<access denied>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from provision.measurement import Measurement
from provision.parsers.base import parse_error, record, require_text, resolve_node

TOOL = "lspci"
#: the ACS Control bits that redirect P2P traffic upstream (drivers/pci/p2pdma.c,
#: pci_bridge_has_acs_redir), as lspci names them
REDIRECT_FLAGS = ("ReqRedir", "CmpltRedir", "EgressCtrl")
#: a device's first line: its address, or with -PP its path of addresses through the bridges
#: above it (``00:02.0/0b:00.0/0c:04.0``: the last is the device, the domain the first's)
_HEAD = re.compile(r"((?:[0-9a-fA-F]{4,8}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]"
                   r"(?:/[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7])*) (\S.*)$")
#: a line of the configuration-space dump that -x / -xxx / -xxxx add below each device
_HEX = re.compile(r"[0-9a-f]{2,3}:(?: [0-9a-f]{2})+\s*$")
_EXPRESS = re.compile(r"Capabilities: \[[0-9a-f]+\] Express \(v\d\) (.+?)(?: \(Slot[+-]\))?,")
_FLAG = re.compile(r"([A-Za-z]+)([+-])")


@dataclass(frozen=True)
class PciFunction:
    address: str                  # with its domain: 0000:02:08.0
    description: str              # "PCI bridge: PLX Technology, Inc. PEX 8747 ..."
    port_type: str | None         # from the Express capability: "Downstream Port", ...
    acs_capability: tuple[str, ...] | None   # ACSCap flags shown '+'; None: no ACS line
    acs_control: tuple[str, ...] | None      # ACSCtl flags shown '+'
    access_denied: bool           # lspci could not read the capabilities (not root)

    @property
    def bridge(self) -> bool:
        return self.description.startswith("PCI bridge")

    @property
    def acs_redirect(self) -> tuple[str, ...]:
        """The ACS Control bits set that send P2P traffic up to the root complex."""
        return tuple(f for f in REDIRECT_FLAGS if f in (self.acs_control or ()))


@dataclass(frozen=True)
class LspciResult:
    node: str
    tool: str
    functions: tuple[PciFunction, ...]

    def function(self, address: str) -> PciFunction | None:
        want = full_address(address)
        return next((f for f in self.functions if f.address == want), None)

    @property
    def access_denied(self) -> bool:
        return any(f.access_denied for f in self.functions)


def full_address(address: str) -> str:
    """``02:08.0`` -> ``0000:02:08.0`` (lspci leaves out domain 0 unless told ``-D``)."""
    return address.lower() if address.count(":") == 2 else f"0000:{address.lower()}"


def _device_address(path: str) -> str:
    """The device's own address from lspci's (``00:02.0/0b:00.0`` -> ``0000:0b:00.0``)."""
    first, _, rest = path.partition("/")
    if not rest:
        return full_address(first)
    domain = first.split(":")[0] if first.count(":") == 2 else "0000"
    return full_address(f"{domain}:{rest.rsplit('/', 1)[-1]}")


def detect(text: str) -> bool:
    return bool(re.search(r"^(?:[0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7][ /][^\n]+\n"
                          r"(?:[ \t]+[^\n]*\n)*?[ \t]+Capabilities: ", text, re.M))


def _flags(text: str) -> tuple[str, ...]:
    return tuple(name for name, sign in _FLAG.findall(text) if sign == "+")


def parse(text: str, *, node: str | None = None, source_name: str = "<stdin>") -> LspciResult:
    lines = require_text(TOOL, text, source_name)
    blocks: list[tuple[str, str, list[str]]] = []
    for i, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        if raw[0] not in " \t":
            if blocks and _HEX.match(raw):
                continue
            m = _HEAD.match(raw.rstrip())
            if m is None:
                raise parse_error(TOOL, source_name, i, f"unexpected line {raw[:60]!r}",
                                  hint="expected the output of lspci -vvv (a PCI address at "
                                       "the start of each device's first line)")
            blocks.append((_device_address(m[1]), m[2], []))
        elif blocks:
            blocks[-1][2].append(raw.strip())
        else:
            raise parse_error(TOOL, source_name, i, "an indented line before the first device")
    if not blocks:
        raise parse_error(TOOL, source_name, 1, "no PCI device in the text")
    return LspciResult(resolve_node(TOOL, source_name, None, node), TOOL,
                       tuple(_function(address, what, body) for address, what, body in blocks))


def _function(address: str, description: str, body: list[str]) -> PciFunction:
    port_type = cap = ctl = None
    for ln in body:
        if m := _EXPRESS.match(ln):
            port_type = m[1]
        elif ln.startswith("ACSCap:"):
            cap = _flags(ln[7:])
        elif ln.startswith("ACSCtl:"):
            ctl = _flags(ln[7:])
    return PciFunction(address, description, port_type, cap, ctl,
                       access_denied=any(ln == "Capabilities: <access denied>" for ln in body))


def acs_detail(f: PciFunction) -> str:
    """``0000:02:08.0 Downstream Port (PLX ...): ACSCtl ReqRedir+ CmpltRedir+`` for a report."""
    what = re.sub(r"\s*\(prog-if [^)]*\)?.*$", "", f.description.partition(": ")[2])[:60]
    flags = " ".join(f"{x}+" for x in f.acs_control or ()) or "all off"
    return f"{f.address} {f.port_type or 'bridge'} ({what}): ACSCtl {flags}"


def measurements(result: LspciResult, check: str | None = None) -> list[Measurement]:
    """``pcie_acs_redirect`` (max 0) for every bridge whose ACS Control lspci shows; a
    ``tool_ran_ok`` of 0 when it could not read the capabilities (not run as root)."""
    check = check or result.tool
    out = [record(result.node, "pcie_acs_redirect", 1 if f.acs_redirect else 0, check=check,
                  max=0.0, detail=acs_detail(f))
           for f in result.functions if f.bridge and f.acs_control is not None]
    if result.access_denied:
        out.append(record(result.node, "tool_ran_ok", 0, check=check, min=1.0,
                          detail="lspci: capabilities <access denied>: ACS control is read "
                                 "from the extended configuration space, run as root"))
    return out

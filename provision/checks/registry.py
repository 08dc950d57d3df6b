"""The check catalog: every check by name, with tags for selection."""

from __future__ import annotations

from collections.abc import Iterable

from provision.checks.base import Check
from provision.checks.conformance import Conformance
from provision.checks.dcgm import Dcgm
from provision.checks.gpudirect import GpuDirect, RdmaPairs
from provision.checks.gpuwork import Hbm, SdcBurnin
from provision.checks.nccl import Nccl, NcclMultiNode
from provision.checks.nvlink import NvlinkTopology
from provision.checks.slurm_health import SlurmHealth
from provision.checks.tools import ToolPresence
from provision.errors import InputError

#: catalog order is run order: cheap inventory first, long burn-in last
CATALOG: tuple[Check, ...] = (
    ToolPresence(), Conformance(), SlurmHealth(), NvlinkTopology(), GpuDirect(), RdmaPairs(),
    Nccl(), NcclMultiNode(), Hbm(), Dcgm(), SdcBurnin(),
)
BY_NAME = {c.name: c for c in CATALOG}


def names() -> list[str]:
    return [c.name for c in CATALOG]


def get(name: str) -> Check:
    try:
        return BY_NAME[name]
    except KeyError:
        raise InputError(f"unknown check {name!r}", hint="one of: " + ", ".join(names())) from None


def select(names_: Iterable[str] | None = None, tags: Iterable[str] | None = None) -> list[Check]:
    """Checks by name and/or tag, in catalog order (an unknown name or tag is an error)."""
    wanted = {n.strip() for n in (names_ or []) if n.strip()}
    tagset = {t.strip() for t in (tags or []) if t.strip()}
    for n in wanted:
        get(n)
    known_tags = {t for c in CATALOG for t in c.tags}
    unknown = tagset - known_tags
    if unknown:
        raise InputError(f"unknown tag(s): {', '.join(sorted(unknown))}",
                         hint="tags: " + ", ".join(sorted(known_tags)))
    return [c for c in CATALOG if c.name in wanted or tagset & set(c.tags)]

"""The site spec: loading, validation and the Site model (see docs/site-spec.md)."""

from provision.spec.loader import load_site, load_site_text
from provision.spec.model import (
    Access,
    BmcSettings,
    CpuSpec,
    Fabric,
    FabricAddress,
    GpuSpec,
    HardwareProfile,
    NicSpec,
    Node,
    PhysicalFigure,
    SecretRef,
    Site,
)

__all__ = [
    "Access", "BmcSettings", "CpuSpec", "Fabric", "FabricAddress", "GpuSpec",
    "HardwareProfile", "NicSpec", "Node", "PhysicalFigure", "SecretRef", "Site", "load_site",
    "load_site_text",
]

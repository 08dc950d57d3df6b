"""What a valid site spec still leaves to chance: said on ``forge validate`` and ``render``.

A warning does not change the exit code; each names what to do about it.
"""

from __future__ import annotations

from provision.spec.model import Site


def warnings(site: Site) -> list[str]:
    """One line per profile (used by a node) whose fabric ports are taken by position."""
    if site.fabric.type == "none":
        return []
    used = {n.profile.name for n in site.nodes}
    out = []
    for p in site.profiles:
        if p.name in used and p.compute_ports and not p.rail_map:
            out.append(
                f"profile {p.name}: no rail_map: its {p.compute_ports} compute ports are taken "
                f"to be mlx5_0..mlx5_{p.compute_ports - 1} in enumeration order, which real "
                f"hosts break (a storage or Ethernet ConnectX function among them); record "
                f"the map on a golden node with `forge rails record` (docs/roles.md, "
                f"'Rails by identity')")
    return out

"""The version-compatibility table (compat.yaml) and the spec's check against it.

One table for the versions that must go together on a node or a cluster: the
driver branch (supported or end of life), the CUDA toolkit's minimum driver
branch, and the driver / DOCA releases the GPU and Network Operators ship.
Every row carries its public source; a version the table does not know is
accepted (nothing to check it against).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import yaml

from provision.paths import package_text


@lru_cache(maxsize=1)
def table() -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: a tenth of the time
    data: dict[str, Any] = yaml.load(package_text("spec/compat.yaml"), Loader=loader)
    return data


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def problems(versions: dict[str, str], scheduler: str) -> list[tuple[str, str]]:
    """(stack.versions key, message) for every combination the table rules out."""
    t = table()
    out: list[tuple[str, str]] = []
    branch = versions.get("driver_branch", "")
    row = t["driver_branches"].get(branch)
    if row and row["status"] != "supported":
        supported = sorted(b for b, r in t["driver_branches"].items()
                           if r["status"] == "supported")
        out.append(("driver_branch", f"driver branch {branch} is {row['status']} "
                                     f"({row['source']}); use one of {', '.join(supported)}"))
    cuda = t["cuda"].get(_major_minor(versions.get("cuda", "")))
    if cuda and branch.isdigit() and int(branch) < int(cuda["min_driver_branch"]):
        out.append(("cuda", f"CUDA {versions['cuda']} needs driver branch "
                            f"{cuda['min_driver_branch']} or newer, the spec has {branch} "
                            f"({cuda['source']})"))
    if scheduler != "kubernetes":
        return out
    net = t["network_operator"].get(versions.get("network_operator", ""))
    doca = versions.get("doca_ofed", "inbox")
    if net and doca != "inbox" and _major_minor(doca) != net["doca"]:
        out.append(("doca_ofed", f"Network Operator {versions['network_operator']} ships DOCA "
                                 f"{net['doca']} drivers, the hosts get DOCA {doca} "
                                 f"({net['source']})"))
    return out

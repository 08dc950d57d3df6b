"""The reference architecture's T-shirt sizes as spec presets, and the stack defaults.

A spec names ``cluster.size`` and gets the preset's node groups, fabric and
stack; anything the spec states itself wins (mappings merge, lists replace).
"""

from __future__ import annotations

from typing import Any

DEFAULT_VERSIONS: dict[str, str] = {
    "driver_branch": "580",
    "cuda": "12.8",
    "doca_ofed": "3.4.1",
    "slurm": "24.11",
    "kubernetes": "1.31",
    "gpu_operator": "v26.7.0",
    "network_operator": "v26.4.1",
    "nccl": "2.26.2",
    "nccl_tests": "2.13.6",
    "perftest": "25.01.0",
    "dcgm": "4.1.1",
    "nvbandwidth": "0.8",
    "containerd": "1.7",
    "helm": "3.16.0",
    "calico": "v3.29.1",
}

#: compute nodes per size, and how many racks they span (LP1798 T-shirt sizes)
SIZES: dict[str, dict[str, Any]] = {
    "small": {"compute": 4, "racks": 1, "gpus": 32},
    "medium": {"compute": 8, "racks": 1, "gpus": 64},
    "large": {"compute": 16, "racks": 2, "gpus": 128},
    "ovx-l40s": {"compute": 16, "racks": 1, "gpus": 64},
}


def _rails(n: int, base: str = "10.20") -> list[dict[str, str]]:
    return [{"name": f"rail{i}", "subnet": f"{base}.{i}.0/24"} for i in range(n)]


def _ib_preset(size: str) -> dict[str, Any]:
    n = SIZES[size]["compute"]
    gpu_group: dict[str, Any] = {
        "name": "gpu", "nodes": f"gpu[001-{n:03d}]", "roles": ["compute"],
        "profile": "sr675v3-h100nvl-ib",
        "addresses": {"management": "10.10.0.101", "bmc": "10.10.1.101", "fabric": 101},
    }
    switches: list[dict[str, Any]]
    if SIZES[size]["racks"] == 2:
        half = n // 2
        gpu_group["racks"] = {"r01": f"gpu[001-{half:03d}]", "r02": f"gpu[{half + 1:03d}-{n:03d}]"}
        switches = [
            {"name": "qm9700-r01", "model": "QM9700", "nodes": f"gpu[001-{half:03d}]",
             "uplinks": ["qm9700-r02"]},
            {"name": "qm9700-r02", "model": "QM9700", "nodes": f"gpu[{half + 1:03d}-{n:03d}]",
             "uplinks": ["qm9700-r01"]},
        ]
    else:
        gpu_group["rack"] = "r01"
        switches = [{"name": "qm9700-1", "model": "QM9700", "nodes": f"gpu[001-{n:03d}]"}]
    return {
        "networks": {
            "management": {"subnet": "10.10.0.0/24", "gateway": "10.10.0.1", "mtu": 1500},
            "bmc": {"subnet": "10.10.1.0/24"},
            "fabric": {"type": "infiniband", "mtu": 4096, "subnet_manager": "switch",
                       "rails": _rails(8), "switches": switches},
        },
        "node_groups": [
            {"name": "head", "nodes": "head01", "roles": ["controller", "login"],
             "profile": "sr650v3-head", "rack": "r01",
             "addresses": {"management": "10.10.0.10", "bmc": "10.10.1.10"}},
            gpu_group,
        ],
        "stack": {"scheduler": "slurm"},
    }


def _ovx_preset() -> dict[str, Any]:
    return {
        "networks": {
            "management": {"subnet": "10.10.0.0/24", "gateway": "10.10.0.1", "mtu": 1500},
            "bmc": {"subnet": "10.10.1.0/24"},
            "fabric": {"type": "roce", "mtu": 9000, "rails": _rails(4),
                       "roce": {"pfc_priority": 3, "trust": "dscp", "dscp": 26, "ecn": True},
                       "switches": [{"name": f"sn4600-{i}", "model": "SN4600",
                                     "nodes": "ovx[01-16]"} for i in (1, 2, 3)]},
        },
        "node_groups": [
            {"name": "head", "nodes": "head01", "roles": ["controller", "login"],
             "profile": "sr650v3-head", "rack": "r01",
             "addresses": {"management": "10.10.0.10", "bmc": "10.10.1.10"}},
            {"name": "ovx", "nodes": "ovx[01-16]", "roles": ["compute"],
             "profile": "sr675v3-l40s-ovx", "rack": "r01",
             "addresses": {"management": "10.10.0.101", "bmc": "10.10.1.101", "fabric": 101}},
        ],
        "stack": {"scheduler": "kubernetes"},
    }


def preset(size: str) -> dict[str, Any]:
    """The preset document for a size ('custom' has none)."""
    if size == "ovx-l40s":
        return _ovx_preset()
    if size in SIZES:
        return _ib_preset(size)
    return {}


def reference_site(size: str = "small") -> dict[str, Any]:
    """A complete spec document for a reference size: forge's embedded default site."""
    return {
        "spec_version": 1,
        "cluster": {"name": f"ra-{size}", "domain": "cluster.example.com", "size": size},
        "bmc": {"username": "USERID", "password": {"env": "FORGE_BMC_PASSWORD"}},
        "acceptance": {"checks": ["conformance", "nvlink", "gpudirect", "nccl", "hbm", "sdc",
                                  "dcgm"]},
    }

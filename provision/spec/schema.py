"""The site spec's JSON Schema (published by `forge schema` and in docs/site-spec.schema.json).

Structure only: types, required keys, enums and unknown keys. Cross-field
rules (duplicates, subnets, sizes, what hardware can do) live in
:mod:`provision.spec.rules`.
"""

from __future__ import annotations

from typing import Any

SPEC_VERSION = 1

_str: dict[str, Any] = {"type": "string", "minLength": 1}
_int: dict[str, Any] = {"type": "integer"}
_num: dict[str, Any] = {"type": "number"}
# physical figures: a size, a rate, a count of cores is never zero or negative
_pos: dict[str, Any] = {"type": "number", "exclusiveMinimum": 0}
_pos_int: dict[str, Any] = {"type": "integer", "minimum": 1}
_pcie_gen: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": 7}
_pcie_width: dict[str, Any] = {"type": "integer", "enum": [1, 2, 4, 8, 16, 32]}
_port: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": 65535}
# what a secret reference may name: it ends up inside an Ansible lookup on the controller,
# so no quotes, braces, backslashes or control characters can ever reach that template
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
SECRET_PATH = r"^[^'\"{}\\\x00-\x1f\x7f]{1,4096}$"
_bool: dict[str, Any] = {"type": "boolean"}
_name: dict[str, Any] = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"}
_mac: dict[str, Any] = {"type": "string",
                        "pattern": r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$"}


def _obj(props: dict[str, Any], required: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        out["required"] = list(required)
    out.update(extra)
    return out


_secret = {
    "description": "a reference to a secret: never the secret itself",
    "oneOf": [
        _obj({"env": {"type": "string", "pattern": ENV_NAME}}, ("env",)),
        _obj({"file": {"type": "string", "pattern": SECRET_PATH}}, ("file",)),
        _obj({"vault": {"type": "string", "pattern": SECRET_PATH},
              "key": {"type": "string", "pattern": r"^[A-Za-z0-9_.-]{1,128}$"}}, ("vault",)),
    ],
}

_network = _obj({
    "subnet": _str, "gateway": _str, "mtu": {"type": "integer", "minimum": 576, "maximum": 9216},
    "vlan": {"type": "integer", "minimum": 1, "maximum": 4094},
}, ("subnet",))

_roce = _obj({
    "pfc_priority": {"type": "integer", "minimum": 0, "maximum": 7},
    "trust": {"enum": ["dscp", "pcp"]},
    "dscp": {"type": "integer", "minimum": 0, "maximum": 63},
    "cnp_dscp": {"type": "integer", "minimum": 0, "maximum": 63},
    "ecn": _bool,
    "roce_mode": {"enum": ["v2", "v1"]},
    "tos": {"type": "integer", "minimum": 0, "maximum": 255},
})

_fabric = _obj({
    "type": {"enum": ["infiniband", "roce", "none"]},
    "mtu": {"type": "integer", "minimum": 256, "maximum": 9216},
    "subnet_manager": {"enum": ["switch", "opensm", "ufm"]},
    "opensm_hosts": _str,
    "rails": {"type": "array", "items": _obj({"name": _name, "subnet": _str}, ("name", "subnet"))},
    "roce": _roce,
    "switches": {"type": "array", "items": _obj({
        "name": _name, "nodes": _str, "model": _str, "uplinks": {"type": "array", "items": _name},
    }, ("name",))},
}, ("type",))

_addresses = _obj({
    "management": _str, "bmc": _str, "ssh": _str,
    "fabric": {"type": "integer", "minimum": 1, "maximum": 65534,
               "description": "host number of the first node in every rail subnet"},
    "except": {"type": "array", "items": _str,
               "description": "addresses never handed out (reserved, broken ports)"},
})

_node_data = _obj({
    "management_ip": _str, "bmc_address": _str, "ssh": _str, "serial": _str,
    "macs": {"type": "object", "additionalProperties": _mac},
    "rack": _name, "roles": {"type": "array", "items": {"enum": ["controller", "login",
                                                                  "compute"]}},
})

_node_group = _obj({
    "name": _name,
    "nodes": _str,
    "roles": {"type": "array", "minItems": 1,
              "items": {"enum": ["controller", "login", "compute"]}},
    "profile": _str,
    "rack": _name,
    "racks": {"type": "object", "additionalProperties": _str,
              "description": "rack name -> node set of the group's nodes in it"},
    "addresses": _addresses,
    "node_data": {"type": "object", "additionalProperties": _node_data},
}, ("name", "nodes", "roles", "profile"))

_gpu_override = _obj({
    "model": _str, "count": {"type": "integer", "minimum": 0, "maximum": 16},
    "nvlink_pairs": {"type": "array", "items": {"type": "array", "items": _int,
                                                "minItems": 2, "maxItems": 2}},
    "memory_gb": _pos, "memory_bandwidth_gbs": _pos, "nvlink_links_per_gpu": _int,
    "nvlink_link_speed_gbs": _pos, "nvlink_bridge_bandwidth_gbs": _pos, "pcie_gen": _pcie_gen,
    "pcie_width": _pcie_width, "bf16_dense_tflops": _pos, "power_limit_w": _pos,
    "fabric_manager": _bool, "nvml_name": _str,
    "cpu_sockets": {"type": "array", "items": {"type": "integer", "minimum": 0}},
})

PCI_ADDRESS = r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$"

_nic = _obj({
    "model": _str, "count": {"type": "integer", "minimum": 0}, "purpose": {
        "enum": ["compute", "storage", "north-south"]},
    "ports_per_nic": {"type": "integer", "minimum": 1}, "rate_gbps": _pos,
    "link_layer": {"enum": ["InfiniBand", "Ethernet"]}, "pcie_gen": _pcie_gen,
    "pcie_width": _pcie_width,
    "gpu_affinity": {"type": "array", "items": {"type": "array", "items": _int}},
}, ("model", "count"))

_profile = _obj({
    "extends": _str, "description": _str, "server": _str, "operating_mode": _str,
    "container": _bool, "fake_gpus": {"type": "integer", "minimum": 0, "maximum": 16},
    "gpu": _gpu_override,
    "nics": {"type": "array", "items": _nic},
    "cpu": _obj({"model": _str, "sockets": _pos_int, "cores_per_socket": _pos_int,
                 "threads_per_core": {"type": "integer", "minimum": 1, "maximum": 8}}),
    "memory_gib": _pos,
    "sources": {"type": "object", "additionalProperties": _str},
    "rail_map": {"type": "array", "description": "compute port i (rail i) -> its PCI function, "
                 "RDMA device and netdev, from a golden node (forge rails record)",
                 "items": _obj({"pci": {"type": "string", "pattern": PCI_ADDRESS},
                                "hca": _str, "netdev": _str}, ("pci", "hca"))},
})

_versions = _obj({k: _str for k in (
    "driver_branch", "cuda", "doca_ofed", "slurm", "kubernetes", "gpu_operator",
    "network_operator", "nccl", "nccl_tests", "perftest", "dcgm", "nvbandwidth", "containerd",
    "helm", "calico", "pyxis", "perftest_tag", "cupy", "nvidia_ml_py")})

_checksums = {"type": "object", "description": "component -> version -> 'sha256:<hex>' of "
              "downloaded files (source tarballs)",
              "additionalProperties": {"type": "object", "additionalProperties": {
                  "type": "string", "pattern": r"^sha256:[0-9a-f]{64}$"}}}

_sources = _obj({
    "mode": {"enum": ["public", "mirror"]},
    "apt_mirror": _str, "yum_mirror": _str, "nvidia_repo": _str, "doca_repo": _str,
    "pypi": _str,
    "helm_repo": _str, "container_registry": _str, "files": _str, "kubernetes_repo": _str,
    "docker_repo": _str,
})

THRESHOLD_NAMES = (
    "hbm_bandwidth", "nvlink_p2p_bandwidth", "nvlink_link_speed", "nvlink_links_up",
    "gpudirect_bw", "ib_write_bw", "nccl_busbw_intra", "nccl_busbw_inter", "gemm_tflops",
    "nccl_busbw_pair", "nccl_alltoall_inter", "pcie_h2d_bw", "pcie_d2h_bw",
    "pcie_link_gen_load", "pcie_link_width_load",
    "gpu_power_fraction", "pcie_link_gen", "pcie_link_width", "nic_port_rate", "gpu_count",
    "gpu_memory_total", "nic_count", "host_memory", "cpu_count",
)
_fraction = {"type": "number", "exclusiveMinimum": 0, "maximum": 1.5}
_thresholds = _obj({name: _fraction for name in THRESHOLD_NAMES})

CHECK_NAMES = ("conformance", "nvlink", "gpudirect", "nccl", "hbm", "sdc", "dcgm", "slurm",
               "tools")

_acceptance = _obj({
    "checks": {"type": "array", "items": {"enum": list(CHECK_NAMES)}},
    "burnin_minutes": {"type": "number", "minimum": 0},
    "baseline": _str,
    "python": _str,
    "gpu_python": _str,
    "requalify_checks": {"type": "array", "items": {"type": "string"}},
    "dcgm_level": {"type": "integer", "minimum": 1, "maximum": 4},
    "nccl_collectives": {"type": "array", "items": {"enum": [
        "all_reduce", "all_gather", "reduce_scatter", "alltoall"]}},
    "thresholds": _thresholds,
    "profile_thresholds": {"type": "object", "additionalProperties": _thresholds},
})


def site_schema() -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://forge.invalid/schemas/site-spec-{SPEC_VERSION}.json",
        "title": "forge site spec",
        **_obj({
            "spec_version": {"const": SPEC_VERSION},
            "cluster": _obj({
                "name": _name, "domain": _str,
                "size": {"enum": ["small", "medium", "large", "ovx-l40s", "custom"]},
            }, ("name",)),
            "access": _obj({"user": _str, "ssh_key": _str, "known_hosts": _str,
                            "become": _bool, "port": _port}),
            "profiles": {"type": "object", "additionalProperties": _profile},
            "networks": _obj({"management": _network, "bmc": _network, "storage": _network,
                              "fabric": _fabric}, ("management",)),
            "node_groups": {"type": "array", "minItems": 1, "items": _node_group},
            "stack": _obj({
                "scheduler": {"enum": ["slurm", "kubernetes"]},
                "gpudirect_mode": {"enum": ["auto", "dmabuf", "peermem"]},
                "hold_os_updates": _bool,
                "versions": _versions,
                "sources": _sources,
                "checksums": _checksums,
                "slurm": _obj({"accounting": _bool, "containers": {
                    "enum": ["none", "enroot", "apptainer"]}, "partition": _name,
                    "gpu_autodetect": {"enum": ["auto", "nvml", "off"]},
                    "health_check": _bool, "health_check_interval_s": _int,
                    "repository": _str}),
                "kubernetes": _obj({"pod_subnet": _str, "service_subnet": _str,
                                    "control_plane_endpoint": _str,
                                    "rdma_network_range": _str,
                                    "network_operator_mode": {"enum": ["host-device",
                                                                       "ipoib"]}}),
            }, ("scheduler",)),
            "bmc": _obj({
                "username": _str, "password": _secret, "scheme": {"enum": ["https", "http"]},
                "verify_tls": _bool, "ca_bundle": _str, "pinned_sha256": _str,
                "firmware_baseline": {"type": "object", "additionalProperties": _str},
                # strings only: YAML 1.1 reads an unquoted Off as false and 1.10 as 1.1
                "bios_baseline": {"type": "object", "additionalProperties": {"type": "string"}},
            }),
            "acceptance": _acceptance,
        }, ("spec_version", "cluster", "node_groups", "stack")),
    }

"""The hardware catalog: built-in profiles, GPU and NIC models, and the spec's extensions."""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

import yaml

from provision.paths import package_text
from provision.spec.model import CpuSpec, GpuSpec, HardwareProfile, NicSpec, RailPort


@lru_cache(maxsize=1)
def catalog() -> dict[str, Any]:
    data: dict[str, Any] = yaml.load(package_text("spec/catalog.yaml"),
                                     Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return data


def builtin_profile_names() -> list[str]:
    return sorted(catalog()["profiles"])


def deep_merge(base: Any, over: Any) -> Any:
    """Mappings merge key by key; anything else (lists included) is replaced by ``over``."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = deep_merge(base[k], v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(over)


def suggest(word: str, choices: list[str]) -> str:
    import difflib  # only for a misspelt name

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class ProfileProblem(Exception):
    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def resolve_profile_dict(name: str, spec_profiles: dict[str, Any],
                         _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """The merged dictionary of a profile, following ``extends`` through spec and catalog."""
    builtin = catalog()["profiles"]
    if name in _seen:
        raise ProfileProblem(("profiles", name, "extends"),
                             f"profile inheritance loops: {' -> '.join((*_seen, name))}")
    if name in spec_profiles:
        own = spec_profiles[name]
        parent_name = own.get("extends")
        if parent_name is None and name in builtin:
            parent_name = name  # a spec entry named like a built-in overrides it
            base = builtin[name]
            parent = resolve_profile_dict(name, {}, ()) if "extends" in base else base
        elif parent_name is None:
            parent = {}
        else:
            if parent_name not in spec_profiles and parent_name not in builtin:
                known = sorted(set(builtin) | set(spec_profiles))
                raise ProfileProblem(("profiles", name, "extends"),
                                     f"unknown profile '{parent_name}'"
                                     f"{suggest(parent_name, known)}")
            if parent_name == name:  # extends the built-in of the same name
                parent = resolve_profile_dict(name, {}, ())
            else:
                parent = resolve_profile_dict(parent_name, spec_profiles, (*_seen, name))
        merged = deep_merge(parent, {k: v for k, v in own.items() if k != "extends"})
        merged["sources"] = {**parent.get("sources", {}), **own.get("sources", {})}
        return merged
    if name in builtin:
        own = builtin[name]
        if "extends" in own:
            parent = resolve_profile_dict(own["extends"], {}, (*_seen, name))
            merged = deep_merge(parent, {k: v for k, v in own.items() if k != "extends"})
            merged["sources"] = {**parent.get("sources", {}), **own.get("sources", {})}
            return merged
        return copy.deepcopy(own)
    known = sorted(set(builtin) | set(spec_profiles))
    raise ProfileProblem((), f"unknown profile '{name}'{suggest(name, known)}")


def build_profile(name: str, d: dict[str, Any]) -> HardwareProfile:
    """Turn a merged profile dictionary into a HardwareProfile (figures from the model tables)."""
    cat = catalog()
    sources: dict[str, str] = dict(d.get("sources", {}))
    # how many GPUs and how they are bridged is the server's layout, not the GPU's datasheet
    for key in ("gpu.count", "gpu.nvlink_pairs", "nics", "memory_gib", "cpu"):
        sources.setdefault(key, sources.get("_", "unspecified"))
    gpu = None
    g = d.get("gpu")
    if g and g.get("count", 0) > 0:
        model = g.get("model")
        if model not in cat["gpu_models"]:
            # an unknown model is fine if the spec gives every figure itself
            needed = ("memory_gb", "memory_bandwidth_gbs", "pcie_gen", "pcie_width",
                      "bf16_dense_tflops", "power_limit_w")
            missing = [k for k in needed if k not in g]
            if missing:
                raise ProfileProblem(
                    ("gpu", "model"),
                    f"unknown GPU model '{model}'{suggest(str(model), sorted(cat['gpu_models']))}"
                    f"; give its figures ({', '.join(missing)}) to use it")
            mdl: dict[str, Any] = {"nvlink": bool(g.get("nvlink_pairs"))}
        else:
            mdl = cat["gpu_models"][model]
        for key, text in mdl.get("sources", {}).items():
            sources.setdefault("gpu" if key == "_" else f"gpu.{key}", text)
        pairs: tuple[tuple[int, int], ...] = tuple(
            (int(p[0]), int(p[1])) for p in g.get("nvlink_pairs", []))
        if pairs and not mdl.get("nvlink", False):
            raise ProfileProblem(("gpu", "nvlink_pairs"),
                                 f"{model} has no NVLink, so it cannot have bridged pairs "
                                 f"(remove nvlink_pairs or use an NVLink-capable GPU)")

        def fig(key: str, default: Any = 0) -> Any:
            if key in g:
                sources[f"gpu.{key}"] = "site spec override"
                return g[key]
            return mdl.get(key, default)

        gpu = GpuSpec(
            model=str(model), count=int(g["count"]), memory_gb=float(fig("memory_gb")),
            memory_bandwidth_gbs=float(fig("memory_bandwidth_gbs")),
            nvlink_pairs=pairs,
            nvlink_links_per_gpu=int(fig("nvlink_links_per_gpu")),
            nvlink_link_speed_gbs=float(fig("nvlink_link_speed_gbs")),
            nvlink_bridge_bandwidth_gbs=float(fig("nvlink_bridge_bandwidth_gbs")),
            pcie_gen=int(fig("pcie_gen")), pcie_width=int(fig("pcie_width")),
            bf16_dense_tflops=float(fig("bf16_dense_tflops")),
            power_limit_w=float(fig("power_limit_w")),
            fabric_manager=bool(g.get("fabric_manager", False)),
            nvml_name=str(fig("nvml_name", "")),
            cpu_sockets=tuple(int(x) for x in g.get("cpu_sockets", [])),
        )
        if gpu.cpu_sockets and len(gpu.cpu_sockets) != gpu.count:
            raise ProfileProblem(("gpu", "cpu_sockets"),
                                 f"lists {len(gpu.cpu_sockets)} sockets for {gpu.count} GPUs "
                                 f"(one entry per GPU index)")
        bad_socket = [x for x in gpu.cpu_sockets if x >= int(d.get("cpu", {}).get("sockets", 1))]
        if bad_socket:
            raise ProfileProblem(("gpu", "cpu_sockets"),
                                 f"socket {bad_socket[0]} does not exist on a "
                                 f"{d.get('cpu', {}).get('sockets', 1)}-socket node")
        for i, pair in enumerate(pairs):
            bad = [x for x in pair if not 0 <= x < gpu.count]
            if bad:
                raise ProfileProblem(("gpu", "nvlink_pairs", i),
                                     f"GPU index {bad[0]} out of range for {gpu.count} GPUs")
        flat = [x for p in pairs for x in p]
        dup = sorted({x for x in flat if flat.count(x) > 1})
        if dup:
            raise ProfileProblem(("gpu", "nvlink_pairs"),
                                 f"GPU {dup[0]} is in more than one bridged pair "
                                 f"(a 2-slot bridge joins exactly two GPUs)")
    nics = []
    for i, n in enumerate(d.get("nics", [])):
        model = n.get("model")
        base = cat["nic_models"].get(model)
        if base is None and "rate_gbps" not in n:
            raise ProfileProblem(("nics", i, "model"),
                                 f"unknown NIC model '{model}'"
                                 f"{suggest(str(model), sorted(cat['nic_models']))}; give "
                                 f"rate_gbps, ports_per_nic and link_layer to use it")
        base = base or {}
        sources.setdefault(f"nic.{model}", base.get("source", "site spec"))
        nics.append(NicSpec(
            model=str(model), count=int(n["count"]),
            ports_per_nic=int(n.get("ports_per_nic", base.get("ports_per_nic", 1))),
            rate_gbps=float(n.get("rate_gbps", base.get("rate_gbps", 0))),
            link_layer=n.get("link_layer", base.get("link_layer", "Ethernet")),
            purpose=n.get("purpose", "compute"),
            pcie_gen=int(n.get("pcie_gen", base.get("pcie_gen", 0))),
            pcie_width=int(n.get("pcie_width", base.get("pcie_width", 0))),
            gpu_affinity=tuple(tuple(a) for a in n.get("gpu_affinity", [])),
        ))
    rail_map = tuple(RailPort(str(r["pci"]).lower(), str(r["hca"]), str(r.get("netdev", "")))
                     for r in d.get("rail_map", []))
    compute_ports = sum(n.ports for n in nics if n.purpose == "compute")
    if rail_map and len(rail_map) != compute_ports:
        raise ProfileProblem(("rail_map",), f"maps {len(rail_map)} ports, but the profile has "
                                            f"{compute_ports} compute ports (one entry per rail)")
    for key in ("pci", "hca"):
        seen = [getattr(r, key) for r in rail_map]
        dup = sorted({x for x in seen if seen.count(x) > 1})
        if dup:
            raise ProfileProblem(("rail_map",), f"{key} {dup[0]} is mapped to more than one rail")
    c = d.get("cpu", {})
    return HardwareProfile(
        name=name, description=d.get("description", ""), server=d.get("server", ""),
        gpu=gpu, nics=tuple(nics),
        cpu=CpuSpec(c.get("model", "unknown"), int(c.get("sockets", 1)),
                    int(c.get("cores_per_socket", 1)), int(c.get("threads_per_core", 1))),
        memory_gib=float(d.get("memory_gib", 0)), operating_mode=d.get("operating_mode", ""),
        container=bool(d.get("container", False)), fake_gpus=int(d.get("fake_gpus", 0)),
        sources=tuple(sorted(sources.items())), rail_map=rail_map,
    )

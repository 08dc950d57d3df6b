"""Render a Site to inventory file contents (a pure function: same spec, same bytes)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2

from provision import __version__
from provision.gcutil import paused_gc
from provision.paths import templates_dir
from provision.spec import gres
from provision.spec.model import HardwareProfile, Node, SecretRef, Site


@dataclass(frozen=True)
class Group:
    name: str
    hosts: tuple[str, ...]


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True, autoescape=False,
    )
    # plain JSON (valid YAML flow style), without jinja's HTML escaping of quotes
    env.filters["tojson"] = _json
    return env


def group_name(prefix: str, value: str) -> str:
    """Ansible group names allow letters, digits and underscores only."""
    return f"{prefix}_{re.sub(r'[^A-Za-z0-9_]', '_', value)}"


def groups_of(site: Site) -> list[Group]:
    members: dict[str, list[str]] = {}

    def add(group: str, host: str) -> None:
        members.setdefault(group, []).append(host)

    for role in ("controller", "login", "compute"):
        members[role] = []
    for n in site.nodes:
        for role in n.roles:
            add(role, n.name)
        if n.profile.gpu is not None or n.profile.fake_gpus:
            add("gpu_nodes", n.name)
        if site.fabric.type != "none" and n.profile.compute_nics:
            add(f"fabric_{site.fabric.type}", n.name)
        add(group_name("rack", n.rack), n.name)
        add(group_name("profile", n.profile.name), n.name)
        add(f"stack_{site.stack.scheduler}", n.name)
        add(group_name("nodegroup", n.group), n.name)
    return [Group(name, tuple(hosts)) for name, hosts in sorted(members.items())]


def hw_vars(p: HardwareProfile) -> dict[str, Any]:
    gpu = None
    if p.gpu is not None:
        g = p.gpu
        sockets = g.cpu_sockets or gres.default_gpu_sockets(g.count, p.cpu.sockets)
        gpu = {"model": g.model, "count": g.count, "memory_gb": g.memory_gb,
               "memory_bandwidth_gbs": g.memory_bandwidth_gbs,
               "nvlink_pairs": [list(x) for x in g.nvlink_pairs],
               "nvlink_links_per_gpu": g.nvlink_links_per_gpu, "pcie_gen": g.pcie_gen,
               "pcie_width": g.pcie_width, "fabric_manager": g.fabric_manager,
               "nvml_name": g.nvml_name, "gres_type": gres.gres_type(g.nvml_name),
               "cores": gres.gpu_cores(sockets, p.cpu.cores_per_socket)}
    fake_sockets = gres.default_gpu_sockets(p.fake_gpus, p.cpu.sockets)
    return {
        "gpu": gpu,
        "nics": [{"model": n.model, "count": n.count, "ports_per_nic": n.ports_per_nic,
                  "rate_gbps": n.rate_gbps, "link_layer": n.link_layer, "purpose": n.purpose}
                 for n in p.nics],
        "cpu": {"model": p.cpu.model, "sockets": p.cpu.sockets,
                "cores_per_socket": p.cpu.cores_per_socket,
                "threads_per_core": p.cpu.threads_per_core},
        "memory_gib": p.memory_gib, "container": p.container, "fake_gpus": p.fake_gpus,
        "fake_gpu_cores": gres.gpu_cores(fake_sockets, p.cpu.cores_per_socket),
        "operating_mode": p.operating_mode,
        "rail_map": [{"pci": r.pci, "hca": r.hca, "netdev": r.netdev} for r in p.rail_map],
    }


def secret_ref_vars(ref: SecretRef | None) -> dict[str, Any] | None:
    """How a role finds a secret at run time: a lookup, never the value."""
    if ref is None:
        return None
    lookup = {
        "env": f"{{{{ lookup('ansible.builtin.env', '{ref.location}') }}}}",
        "file": f"{{{{ lookup('ansible.builtin.file', '{ref.location}') }}}}",
        "vault": f"{{{{ lookup('ansible.builtin.unvault', '{ref.location}') }}}}",
    }[ref.kind]
    return {"kind": ref.kind, "location": ref.location, "key": ref.key, "lookup": lookup}


def render_files(site: Site, spec_text: str | None = None) -> dict[str, str]:
    """Relative path -> file content for the whole inventory (the header hashes the spec
    as the user gave it: ``site.text`` unless ``spec_text`` says otherwise)."""
    env = _env()
    text = site.text if spec_text is None else spec_text
    common = {
        "forge_version": __version__,
        "source_name": site.source.rsplit("/", 1)[-1],
        "spec_sha256": hashlib.sha256(text.encode()).hexdigest(),
    }
    files: dict[str, str] = {}
    files["hosts.yml"] = env.get_template("hosts.yml.j2").render(groups=groups_of(site), **common)
    f = site.fabric
    files["group_vars/all/forge.yml"] = env.get_template("group_vars_all.yml.j2").render(
        site=site, versions=site.stack.version_map,
        sources={"mode": site.stack.sources.mode, **dict(site.stack.sources.urls)},
        networks=site.network_map,
        fabric={"type": f.type, "mtu": f.mtu, "subnet_manager": f.subnet_manager,
                "opensm_hosts": f.opensm_hosts,
                "rails": [{"name": r.name, "subnet": r.subnet} for r in f.rails],
                "roce": f.roce.__dict__ if f.roce else None,
                "switches": list(f.switches)},
        slurm={"cluster_name": site.name, "accounting": False, "containers": "none",
               "partition": "gpu", **dict(site.stack.slurm)},
        kubernetes={"pod_subnet": "10.244.0.0/16", "service_subnet": "10.96.0.0/12",
                    "network_operator_mode": "host-device", "rdma_network_range": "10.250.0.0/16",
                    **dict(site.stack.kubernetes)},
        acceptance=site.acceptance_map,
        checksums=dict(site.stack.checksums),
        bmc_credentials={"username": site.bmc.username,
                         "password": secret_ref_vars(site.bmc.password)},
        **common)
    ptemplate = env.get_template("group_vars_profile.yml.j2")
    for p in site.profiles:
        if any(n.profile.name == p.name for n in site.nodes):
            files[f"group_vars/{group_name('profile', p.name)}/forge.yml"] = ptemplate.render(
                profile=p, hw=hw_vars(p), **common)
    htemplate = env.get_template("host_vars.yml.j2")
    enc = _HostJson()
    fill: Callable[..., str] | None = None
    with paused_gc():  # 50,000 hosts: hundreds of thousands of strings, none garbage
        for n in site.nodes:
            values = {"node": n, "j": enc.host(n), **common}
            if fill is None:
                text = htemplate.render(**values)
                fill = _substitution(env, "host_vars.yml.j2", values, text) or htemplate.render
            else:
                text = fill(**values)
            files[f"host_vars/{n.name}.yml"] = text
    return files


def _substitution(env: jinja2.Environment, name: str, values: dict[str, Any],
                  rendered: str) -> Callable[..., str] | None:
    """The template as one ``str.format`` call, where it only substitutes values.

    A template made of text and ``{{ name }}`` / ``{{ name.attr }}`` alone (no tags,
    filters or tests) renders each value with ``str()``, exactly what ``str.format``
    does; 50,000 hosts then cost one C-level format call each instead of a template
    run. The result for the first host must equal jinja's own (``rendered``), else
    None: the caller keeps rendering with jinja.
    """
    from jinja2 import nodes

    source = env.loader.get_source(env, name)[0] if env.loader else ""
    fmt: list[str] = []
    for out in env.parse(source).body:
        if not isinstance(out, nodes.Output):
            return None
        for node in out.nodes:
            if isinstance(node, nodes.TemplateData):
                fmt.append(node.data.replace("{", "{{").replace("}", "}}"))
            elif isinstance(node, nodes.Name) and node.name in values:
                fmt.append(f"{{{node.name}}}")
            elif (isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name)
                  and node.node.name in values and node.attr.isidentifier()):
                item = isinstance(values[node.node.name], dict)  # jinja: j.x is j["x"]
                fmt.append(f"{{{node.node.name}[{node.attr}]}}" if item
                           else f"{{{node.node.name}.{node.attr}}}")
            else:
                return None
    fill = "".join(fmt).format
    return fill if fill(**values) == rendered else None


def _json(value: Any) -> str:
    """The ``tojson`` filter's text: valid YAML flow style."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


class _HostJson:
    """Each host's values as JSON text, the way ``tojson`` writes them, with the repeats cached.

    Group, roles, rack and the per-rail part of every fabric address are the same for
    thousands of hosts; only addresses differ, and a plain address needs no encoder.
    """

    _ADDRESS = "\x00address\x00"

    def __init__(self) -> None:
        self.memo: dict[Any, str] = {}
        self.rails: dict[tuple[Any, ...], tuple[str, str]] = {}

    def value(self, v: Any) -> str:
        if type(v) is str and _PLAIN.fullmatch(v):
            return f'"{v}"'
        key = (type(v), v)
        got = self.memo.get(key)
        if got is None:
            got = self.memo[key] = _json(list(v) if type(v) is tuple else v)
        return got

    def fabric(self, n: Node) -> str:
        parts = []
        for a in n.fabric_addresses:
            d = dict(a.__dict__)
            address = d.pop("address")
            key = (type(a), *d.values())  # a dataclass: same fields, same order
            split = self.rails.get(key)
            if split is None:
                head, _, tail = _json({**d, "address": self._ADDRESS}).partition(
                    _json(self._ADDRESS))
                split = self.rails[key] = (head, tail)
            parts.append(f"{split[0]}{self.value(address)}{split[1]}")
        return f"[{', '.join(parts)}]"

    def host(self, n: Node) -> dict[str, str]:
        macs = self.memo.get(("macs", n.macs))
        if macs is None:
            macs = self.memo[("macs", n.macs)] = _json(n.mac_map)
        return {"ssh_host": self.value(n.ssh_host), "group": self.value(n.group),
                "roles": self.value(tuple(n.roles)), "rack": self.value(n.rack),
                "management_ip": self.value(n.management_ip),
                "bmc_address": self.value(n.bmc_address), "serial": self.value(n.serial),
                "macs": macs, "fabric_addresses": self.fabric(n)}


#: strings JSON writes as they are between quotes (addresses, names)
_PLAIN = re.compile(r"[A-Za-z0-9._:\-/]*")


def spec_json(site: Site) -> str:
    """The merged spec (presets applied) as canonical JSON: what a run directory records."""
    return json.dumps(site.document, sort_keys=True, indent=2)

"""Turn a structurally valid spec document into a Site, collecting every cross-field problem.

Each check appends a located message instead of raising, so a user sees all
problems of a spec in one run.
"""

from __future__ import annotations

import ipaddress
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from provision.errors import InputError
from provision.nodes import NodeSetError, members, size_bound
from provision.spec import compat
from provision.spec.allocate import int_to_ipv4, ipv4_to_int, sequence, split_hostport
from provision.spec.model import (
    Access,
    BmcSettings,
    Fabric,
    FabricAddress,
    HardwareProfile,
    Node,
    PackageSources,
    Rail,
    RoceSettings,
    SecretRef,
    Site,
    Stack,
)
from provision.spec.presets import SIZES
from provision.spec.profiles import ProfileProblem, build_profile, resolve_profile_dict
from provision.spec.yamlsrc import Located, Path_


class Problems:
    def __init__(self, located: Located) -> None:
        self.located = located
        self.items: list[str] = []

    def add(self, path: Path_, message: str) -> None:
        self.items.append(self.located.problem(path, message))


def _network(net: dict[str, Any] | None, path: Path_, probs: Problems) -> Any:
    if not net:
        return None
    try:
        parsed = ipaddress.ip_network(net["subnet"], strict=True)
    except ValueError as exc:
        probs.add(path + ("subnet",), f"invalid subnet {net['subnet']!r}: {exc}")
        return None
    gw = net.get("gateway")
    if gw is not None:
        try:
            if ipaddress.ip_address(gw) not in parsed:
                probs.add(path + ("gateway",), f"gateway {gw} is outside subnet {parsed}")
        except ValueError:
            probs.add(path + ("gateway",), f"invalid IP address {gw!r}")
    return parsed


def _profiles(doc: dict[str, Any], probs: Problems) -> dict[str, HardwareProfile]:
    spec_profiles = doc.get("profiles", {})
    wanted: dict[str, Path_] = {}
    for i, g in enumerate(doc["node_groups"]):
        wanted.setdefault(g["profile"], ("node_groups", i, "profile"))
    for name in spec_profiles:
        wanted.setdefault(name, ("profiles", name))
    out: dict[str, HardwareProfile] = {}
    for name, path in wanted.items():
        try:
            d = resolve_profile_dict(name, spec_profiles)
            out[name] = build_profile(name, d)
        except ProfileProblem as exc:
            where = exc.path if exc.path and exc.path[0] == "profiles" else (
                ("profiles", name, *exc.path) if name in spec_profiles and exc.path else path)
            probs.add(where, f"profile '{name}': {exc.message}" if where != path else exc.message)
    return out


def _rack_map(group: dict[str, Any], gpath: Path_, probs: Problems) -> dict[str, str]:
    """Node name -> rack for a group's ``racks`` mapping (each node set expanded once)."""
    out: dict[str, str] = {}
    for rack, pattern in group.get("racks", {}).items():
        try:
            for name in members(pattern):
                out.setdefault(name, str(rack))
        except NodeSetError as exc:
            probs.add(gpath + ("racks", rack), f"invalid node set {pattern!r}: {exc}")
    return out


def _rack_of(group: dict[str, Any], name: str, racks: dict[str, str], gpath: Path_,
             probs: Problems) -> str:
    if group.get("racks"):
        if name not in racks:
            probs.add(gpath + ("racks",), f"node {name} is in no rack of this group")
            return "unassigned"
        return racks[name]
    return str(group.get("rack", "default"))


def _allocator(first: str | None, path: Path_, excepts: frozenset[str], probs: Problems) -> Any:
    if first is None:
        return None
    try:
        return sequence(first, excepts)
    except ValueError as exc:
        probs.add(path, f"cannot allocate from {first!r}: {exc}")
        return None


def _next(gen: Any, path: Path_, probs: Problems) -> str | None:
    if gen is None:
        return None
    try:
        return str(next(gen))
    except (ValueError, StopIteration) as exc:
        probs.add(path, str(exc))
        return None


def _fabric(doc: dict[str, Any], probs: Problems) -> Fabric:
    f = doc["networks"].get("fabric") or {"type": "none"}
    ftype = f["type"]
    rails = tuple(Rail(r["name"], r["subnet"]) for r in f.get("rails", []))
    if "roce" in f and ftype != "roce":
        probs.add(("networks", "fabric", "roce"),
                  f"RoCE settings given but the fabric type is '{ftype}'")
    roce = RoceSettings(**f.get("roce", {})) if ftype == "roce" else None
    if f.get("subnet_manager") == "opensm" and not f.get("opensm_hosts"):
        probs.add(("networks", "fabric", "subnet_manager"),
                  "subnet_manager 'opensm' needs opensm_hosts (the nodes that run it)")
    if f.get("subnet_manager") and ftype != "infiniband":
        probs.add(("networks", "fabric", "subnet_manager"),
                  f"a subnet manager only applies to InfiniBand, not '{ftype}'")
    return Fabric(
        type=ftype, mtu=int(f.get("mtu", 4096 if ftype == "infiniband" else 9000)),
        subnet_manager=f.get("subnet_manager", "switch" if ftype == "infiniband" else "none"),
        rails=rails, roce=roce, switches=tuple(f.get("switches", [])),
        opensm_hosts=f.get("opensm_hosts"),
    )


def _fabric_addresses(profile: HardwareProfile, fabric: Fabric, host_number: int | None,
                      path: Path_, probs: Problems) -> tuple[FabricAddress, ...]:
    if fabric.type == "none" or host_number is None or not profile.compute_nics:
        return ()
    out = []
    netdev_prefix = "ib" if fabric.type == "infiniband" else ""
    for i, rail in enumerate(fabric.rails[: profile.compute_ports]):
        try:
            base, size, prefix = _rail_network(rail.subnet)
        except ValueError:
            continue  # an invalid subnet is reported where networks are checked
        if host_number >= size - 1:
            probs.add(path, f"rail {rail.name}: host number {host_number} does not fit in "
                            f"{rail.subnet}")
            continue
        address = (int_to_ipv4(base + host_number) if base >= 0 else
                   str(ipaddress.ip_network(rail.subnet, strict=False)[host_number]))
        if profile.rail_map:      # the port by identity, recorded from a golden node
            port = profile.rail_map[i]
            out.append(FabricAddress(port.hca, 1, rail.name, address, prefix, port.netdev,
                                     port.pci))
        else:                     # no map: enumeration order (docs/roles.md, rail map)
            out.append(FabricAddress(f"mlx5_{i}", 1, rail.name, address, prefix,
                                     f"{netdev_prefix}{i}" if netdev_prefix else ""))
    return tuple(out)


@lru_cache(maxsize=256)
def _rail_network(subnet: str) -> tuple[int, int, int]:
    """(IPv4 network as int or -1 for IPv6, number of addresses, prefix length)."""
    net = ipaddress.ip_network(subnet, strict=False)
    base = int(net.network_address) if net.version == 4 else -1
    return base, net.num_addresses, net.prefixlen


def _inside(host: str, subnet: Any) -> bool | None:
    """Whether ``host`` lies in ``subnet`` (loopback and no subnet count as inside);
    None when ``host`` is not an IP address."""
    v4 = ipv4_to_int(host)
    if v4 is not None and (subnet is None or subnet.version == 4):
        if subnet is None or (v4 >> 24) == 127:
            return True
        net_int, mask = _v4_net(subnet)
        return (v4 & mask) == net_int
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return subnet is None or ip.is_loopback or ip in subnet


@lru_cache(maxsize=64)
def _v4_net(subnet: Any) -> tuple[int, int]:
    """(network, mask) of an IPv4Network; keyed by the object, not its text (100,000 calls)."""
    return int(subnet.network_address), int(subnet.netmask)


#: a node name is a host name (RFC 1123 label): it becomes a file name, an Ansible
#: host and a Slurm NodeName, so no dots, slashes or other path characters
HOSTNAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
#: more nodes than any site forge is built for: a typo such as gpu[1-20000000]
MAX_NODES = 100_000


def _is_address(text: str) -> bool:
    host = text.rsplit(":", 1)[0] if text.count(":") == 1 else text
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _hostport(value: str, path: Path_, probs: Problems) -> tuple[str, int | None]:
    """``split_hostport`` with its problems reported at ``path`` (port 1..65535)."""
    try:
        host, port = split_hostport(value)
    except ValueError as exc:
        probs.add(path, str(exc))
        return value, None
    if port is not None and not 1 <= port <= 65535:
        probs.add(path, f"port {port} in {value!r} is outside 1..65535")
        return host, None
    return host, port


def _members(g: dict[str, Any], gpath: Path_, probs: Problems, budget: int) -> list[str] | None:
    """The group's node names, each a valid host name, and no more than ``budget`` of them."""
    if size_bound(g["nodes"]) > budget:
        probs.add(gpath + ("nodes",), f"{g['nodes']!r} is over {budget:,} nodes; a site "
                                      f"spec holds at most {MAX_NODES:,} in all (a typo?)")
        return None
    try:
        names = members(g["nodes"])
    except NodeSetError as exc:
        probs.add(gpath + ("nodes",), f"invalid node set {g['nodes']!r}: {exc}")
        return None
    if len(names) > budget:
        probs.add(gpath + ("nodes",), f"{g['nodes']!r} is {len(names):,} nodes; a site "
                                      f"spec holds at most {MAX_NODES:,} in all (a typo?)")
        return None
    bad = [n for n in names if not HOSTNAME.match(n)]
    if bad:
        probs.add(gpath + ("nodes",), f"{bad[0]!r} is not a valid host name (letters, digits "
                                      f"and '-', at most 63 characters, no '.' or '/')"
                                      + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""))
        return None
    return names


def _secret(ref: dict[str, Any] | None) -> SecretRef | None:
    if not ref:
        return None
    if "env" in ref:
        return SecretRef("env", ref["env"])
    if "file" in ref:
        return SecretRef("file", ref["file"])
    return SecretRef("vault", ref["vault"], ref.get("key"))


def build_site(doc: dict[str, Any], located: Located,
               base_dir: Path) -> tuple[Site | None, list[str]]:
    probs = Problems(located)
    if not isinstance(doc.get("networks"), dict):
        probs.add(("networks",), "'networks' is required (size custom has no preset networks)")
        return None, probs.items
    nets = doc["networks"]
    subnets: dict[str, Any] = {}
    for name in ("management", "bmc", "storage"):
        parsed = _network(nets.get(name), ("networks", name), probs)
        if parsed is not None:
            subnets[name] = (parsed, ("networks", name, "subnet"))
    fabric = _fabric(doc, probs)
    for i, rail in enumerate(nets.get("fabric", {}).get("rails", [])):
        parsed = _network(rail, ("networks", "fabric", "rails", i), probs)
        if parsed is not None:
            subnets[f"rail {rail['name']}"] = (parsed, ("networks", "fabric", "rails", i,
                                                        "subnet"))
    names = list(subnets)
    for a_i, a in enumerate(names):
        for b in names[a_i + 1:]:
            if subnets[a][0].overlaps(subnets[b][0]):
                probs.add(subnets[b][1], f"subnet {subnets[b][0]} ({b}) overlaps "
                                         f"{subnets[a][0]} ({a})")
    profiles = _profiles(doc, probs)
    access_d = doc.get("access", {})
    default_port = int(access_d.get("port", 22))

    nodes: list[Node] = []
    seen: dict[str, dict[str, Path_]] = {k: {} for k in ("name", "ip", "mac", "bmc", "ssh",
                                                          "serial")}

    def unique(kind: str, value: str | None, path: Path_, label: str) -> None:
        if value is None:
            return
        key = value.lower()
        if key in seen[kind]:
            first = located.where(seen[kind][key])
            probs.add(path, f"duplicate {label} {value} (also used at {first})")
        else:
            seen[kind][key] = path

    total = 0
    for gi, g in enumerate(doc["node_groups"]):
        gpath: Path_ = ("node_groups", gi)
        group_nodes = _members(g, gpath, probs, MAX_NODES - total)
        if group_nodes is None:
            continue
        total += len(group_nodes)
        profile = profiles.get(g["profile"])
        addrs = g.get("addresses", {})
        excepts = frozenset(addrs.get("except", []))
        for bad in sorted(e for e in excepts if not _is_address(e)):
            probs.add(gpath + ("addresses", "except"), f"{bad!r} is not an IP address")
        gens = {k: _allocator(addrs.get(k), gpath + ("addresses", k), excepts, probs)
                for k in ("management", "bmc", "ssh")}
        node_data = g.get("node_data", {})
        racks = _rack_map(g, gpath, probs)
        for extra in sorted(set(node_data) - set(group_nodes)):
            probs.add(gpath + ("node_data", extra),
                      f"node_data for {extra}, which is not in this group's nodes {g['nodes']}")
        for ni, name in enumerate(group_nodes):
            data = node_data.get(name, {})
            dpath = gpath + ("node_data", name) if name in node_data else gpath + ("nodes",)
            unique("name", name, gpath + ("nodes",), "host name")
            alloc = {k: _next(gens[k], gpath + ("addresses", k), probs) for k in gens}
            mgmt = data.get("management_ip", alloc["management"])
            bmc = data.get("bmc_address", alloc["bmc"])
            ssh = data.get("ssh", alloc["ssh"])
            for kind, value, net, key in (("ip", mgmt, "management", "management_ip"),
                                          ("bmc", bmc, "bmc", "bmc_address")):
                if value is None:
                    continue
                kpath = dpath + (key,) if key in data else gpath + ("addresses", net)
                host, _ = _hostport(value, kpath, probs) if value.count(":") == 1 \
                    else (value, None)
                inside = _inside(host, subnets[net][0] if net in subnets else None)
                if inside is None:
                    if kind == "ip":
                        probs.add(kpath, f"invalid IP address {value!r} for {name}")
                    unique(kind, value, kpath, f"{net} address")
                    continue
                if not inside:
                    probs.add(kpath, f"{name}: {net} address {value} is outside "
                                     f"networks.{net}.subnet {subnets[net][0]}")
                unique(kind, value, kpath, f"{net} address")
            if ssh:
                ssh_host, ssh_port = _hostport(ssh, dpath + ("ssh",) if "ssh" in data
                                               else gpath + ("addresses", "ssh"), probs)
            else:
                ssh_host, ssh_port = mgmt or name, None
            unique("ssh", f"{ssh_host}:{ssh_port or default_port}", dpath, "SSH endpoint")
            for label, mac in data.get("macs", {}).items():
                unique("mac", mac, dpath + ("macs", label), "MAC address")
            if data.get("serial"):
                unique("serial", data["serial"], dpath + ("serial",), "serial number")
            host_number = addrs.get("fabric")
            if profile is None:
                continue
            nodes.append(Node(
                name=name, group=g["name"], roles=tuple(data.get("roles", g["roles"])),
                rack=(str(data["rack"]) if "rack" in data
                      else _rack_of(g, name, racks, gpath, probs)),
                profile=profile, management_ip=mgmt, ssh_host=ssh_host,
                ssh_port=ssh_port or default_port, bmc_address=bmc,
                macs=tuple(sorted((k, v.lower()) for k, v in data.get("macs", {}).items())),
                serial=data.get("serial"),
                fabric_addresses=_fabric_addresses(
                    profile, fabric, None if host_number is None else host_number + ni,
                    gpath + ("addresses", "fabric"), probs),
            ))

    _check_size_and_stack(doc, nodes, profiles, fabric, probs)
    if probs.items:
        return None, probs.items
    stack_d = doc["stack"]
    src = dict(stack_d.get("sources", {}))
    bmc_d = doc.get("bmc", {})
    site = Site(
        name=doc["cluster"]["name"], domain=doc["cluster"].get("domain", "cluster.local"),
        size=doc["cluster"].get("size", "custom"), spec_version=doc["spec_version"],
        source=located.source, nodes=tuple(nodes),
        profiles=tuple(profiles[k] for k in sorted(profiles)),
        networks=tuple(sorted((k, v) for k, v in nets.items() if k != "fabric")),
        fabric=fabric,
        stack=Stack(
            scheduler=stack_d["scheduler"],
            versions=tuple(sorted((k, str(v)) for k, v in stack_d.get("versions", {}).items())),
            sources=PackageSources(mode=src.pop("mode", "public"),
                                   urls=tuple(sorted(src.items()))),
            slurm=tuple(sorted(stack_d.get("slurm", {}).items())),
            kubernetes=tuple(sorted(stack_d.get("kubernetes", {}).items())),
            checksums=tuple(sorted(stack_d.get("checksums", {}).items())),
            gpudirect_mode=stack_d.get("gpudirect_mode", "auto"),
            hold_os_updates=bool(stack_d.get("hold_os_updates", True)),
        ),
        access=Access(user=access_d.get("user", "root"),
                      ssh_key=_path(access_d.get("ssh_key"), base_dir),
                      known_hosts=_path(access_d.get("known_hosts"), base_dir),
                      become=bool(access_d.get("become", False))),
        bmc=BmcSettings(
            username=bmc_d.get("username", "USERID"), password=_secret(bmc_d.get("password")),
            scheme=bmc_d.get("scheme", "https"), verify_tls=bool(bmc_d.get("verify_tls", True)),
            ca_bundle=_path(bmc_d.get("ca_bundle"), base_dir),
            pinned_sha256=bmc_d.get("pinned_sha256"),
            firmware_baseline=tuple(sorted(bmc_d.get("firmware_baseline", {}).items())),
            bios_baseline=tuple(bmc_d.get("bios_baseline", {}).items()),
        ),
        acceptance=tuple(sorted(doc.get("acceptance", {}).items())),
        document=doc, base_dir=base_dir,
    )
    return site, []


def _path(value: str | None, base_dir: Path) -> str | None:
    if not value:
        return None
    try:
        p = Path(value).expanduser()
    except RuntimeError:  # ~user of a user this machine does not have
        raise InputError(f"{value}: no such user's home directory") from None
    return os.path.normpath(p if p.is_absolute() else (base_dir / p))


def _check_size_and_stack(doc: dict[str, Any], nodes: list[Node],
                          profiles: dict[str, HardwareProfile], fabric: Fabric,
                          probs: Problems) -> None:
    size = doc["cluster"].get("size", "custom")
    compute = [n for n in nodes if "compute" in n.roles and n.profile.gpu is not None]
    if size in SIZES:
        want = SIZES[size]
        if len(compute) != want["compute"]:
            probs.add(("cluster", "size"),
                      f"size '{size}' means {want['compute']} GPU compute nodes, but the spec "
                      f"has {len(compute)} (use size: custom for other counts)")
        racks = {n.rack for n in compute}
        if len(racks) != want["racks"]:
            probs.add(("cluster", "size"),
                      f"size '{size}' spans {want['racks']} rack(s), but the compute nodes are "
                      f"in {len(racks)}: {', '.join(sorted(racks))}")
    scheduler = doc["stack"]["scheduler"]
    controllers = [n for n in nodes if "controller" in n.roles]
    if not controllers:
        what = "Slurm controller" if scheduler == "slurm" else "Kubernetes control plane"
        probs.add(("node_groups",), f"the {scheduler} stack needs a {what}: give one node "
                                    f"group the role 'controller'")
    elif scheduler == "slurm" and len(controllers) > 2:
        probs.add(("node_groups",), f"Slurm supports a primary and a backup controller, not "
                                    f"{len(controllers)}")
    if not any("compute" in n.roles for n in nodes):
        probs.add(("node_groups",), "no node has the role 'compute'")
    layer = {"infiniband": "InfiniBand", "roce": "Ethernet"}.get(fabric.type)
    for gi, g in enumerate(doc["node_groups"]):
        p = profiles.get(g["profile"])
        if p is None or not p.compute_nics:
            continue
        if fabric.type == "none":
            probs.add(("networks", "fabric", "type"),
                      f"profile '{p.name}' (group {g['name']}) has compute NICs but the fabric "
                      f"type is 'none'")
            continue
        wrong = [n.model for n in p.compute_nics if n.link_layer != layer]
        if wrong:
            probs.add(("node_groups", gi, "profile"),
                      f"profile '{p.name}' has {wrong[0]} compute NICs "
                      f"({_other(layer)}), but the fabric is {fabric.type}")
        if not fabric.rails:
            probs.add(("networks", "fabric", "rails"),
                      f"no rails: profile '{p.name}' has {p.compute_ports} compute ports that "
                      f"need a subnet each (or per rail)")
        elif len(fabric.rails) > p.compute_ports:
            probs.add(("networks", "fabric", "rails"),
                      f"{len(fabric.rails)} rails but profile '{p.name}' has only "
                      f"{p.compute_ports} compute ports")
        if "fabric" not in g.get("addresses", {}):
            probs.add(("node_groups", gi, "addresses"),
                      f"group {g['name']} has compute NICs: give addresses.fabric (the host "
                      f"number of its first node in every rail subnet)")
    if fabric.opensm_hosts:
        try:
            sm = set(members(fabric.opensm_hosts))
        except NodeSetError as exc:
            probs.add(("networks", "fabric", "opensm_hosts"), f"invalid node set: {exc}")
            sm = set()
        known = {n.name: n for n in nodes}
        for name in sorted(sm):
            node = known.get(name)
            if node is None:
                probs.add(("networks", "fabric", "opensm_hosts"), f"{name} is not a node")
            elif not any(n.link_layer == "InfiniBand" for n in node.profile.nics):
                probs.add(("networks", "fabric", "opensm_hosts"),
                          f"{name} has no InfiniBand NIC to run opensm on")
    versions = {k: str(v) for k, v in doc["stack"].get("versions", {}).items()}
    for key, message in compat.problems(versions, scheduler):
        probs.add(("stack", "versions", key), message)
    used = {g["profile"] for g in doc["node_groups"]}
    for name in doc.get("acceptance", {}).get("profile_thresholds", {}):
        if name not in used:
            probs.add(("acceptance", "profile_thresholds", name),
                      f"thresholds for profile '{name}', which no node group uses "
                      f"(used: {', '.join(sorted(used))})")


def _other(layer: str | None) -> str:
    return "InfiniBand" if layer == "Ethernet" else "Ethernet"

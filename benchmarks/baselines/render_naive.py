"""Naive floor for forge validate/render on the render_bench-style spec.

Usage: SPEC (OUT | --validate-only) [--fsync]. libyaml, ClusterShell node sets, integer
address arithmetic, duplicate and subnet checks, the same host_vars text, a hosts.yml, staged
and renamed into place after one os.sync() (every file system of the machine flushed, the
write-back done by kernel threads: not in this process's CPU time) or, with --fsync, after
an fsync of each file written and its directories (what forge does: the same flush, nothing
else on the machine). No schema, profiles, manifest or group_vars.
"""
import ipaddress
import json
import os
import sys
import tempfile

import yaml
from ClusterShell.NodeSet import NodeSet

spec, out = sys.argv[1], (None if sys.argv[2] == "--validate-only" else sys.argv[2])
each = "--fsync" in sys.argv[3:]
with open(spec) as fh:
    doc = yaml.load(fh, Loader=yaml.CSafeLoader)
nets = doc["networks"]
mgmt = ipaddress.ip_network(nets["management"]["subnet"])
bmc = ipaddress.ip_network(nets["bmc"]["subnet"])
rails = [(r["name"], ipaddress.ip_network(r["subnet"])) for r in nets["fabric"]["rails"]]
hosts, seen_ip, groups = [], set(), {}
for g in doc["node_groups"]:
    members = list(NodeSet(g["nodes"]))
    rack_of = {}
    for rack, ns in (g.get("racks") or {}).items():
        for n in NodeSet(ns):
            rack_of[n] = rack
    a = g["addresses"]
    m0, b0 = int(ipaddress.ip_address(a["management"])), int(ipaddress.ip_address(a["bmc"]))
    f0 = a.get("fabric")
    for i, name in enumerate(members):
        m, b = m0 + i, b0 + i
        for ip, net in ((m, mgmt), (b, bmc)):
            if ip in seen_ip or not (int(net.network_address) <= ip <= int(net.broadcast_address)):
                sys.exit(f"{spec}: bad or duplicate address for {name}")
            seen_ip.add(ip)
        fab = []
        if f0 is not None:
            for k, (rname, rnet) in enumerate(rails):
                addr = ipaddress.IPv4Address(int(rnet.network_address) + f0 + i)
                fab.append({"address": str(addr),
                            "device": f"mlx5_{k}", "netdev": f"ib{k}", "port": 1,
                            "prefix": rnet.prefixlen, "rail": rname})
        hosts.append((name, g, rack_of.get(name, "default"), str(ipaddress.IPv4Address(m)),
                      str(ipaddress.IPv4Address(b)), fab))
        for role in g["roles"]:
            groups.setdefault(role, []).append(name)
print(f"{spec}: valid: {len(hosts)} nodes")
if out is None:
    sys.exit(0)
src = os.path.basename(spec)
stage = tempfile.mkdtemp(prefix=".stage.", dir=os.path.dirname(os.path.abspath(out)))
os.mkdir(os.path.join(stage, "host_vars"))
d = json.dumps
written = []
for name, g, rack, mip, bip, fab in hosts:
    written.append(os.path.join(stage, "host_vars", name + ".yml"))
    with open(written[-1], "w") as f:
        f.write(f"# {name}: rendered from {src}.\n"
                f"ansible_host: {d(mip)}\nansible_port: 22\n"
                f"forge_group: {d(g['name'])}\nforge_roles: {d(g['roles'])}\n"
                f"forge_rack: {d(rack)}\n"
                f"forge_management_ip: {d(mip)}\nforge_bmc_address: {d(bip)}\nforge_serial: null\n"
                f"forge_macs: {{}}\nforge_fabric_addresses: {d(fab, sort_keys=True)}\n")
written.append(os.path.join(stage, "hosts.yml"))
with open(written[-1], "w") as f:
    f.write("all:\n  children:\n")
    for grp, names in sorted(groups.items()):
        f.write(f"    {grp}:\n      hosts:\n" + "".join(f"        {n}: {{}}\n" for n in names))
if each:
    for path in [*written, os.path.join(stage, "host_vars"), stage]:
        fd = os.open(path, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
else:
    os.sync()
os.rename(stage, out)

"""What the lab needs on this machine, checked before ``forge lab up`` touches anything.

One table: each need is a set of alternatives (any one will do), the Debian
package that brings it, and why the lab needs it. ``scripts/system-deps.sh``
installs these packages; ``tests/lab/test_fresh_os.py`` runs that script in bare
Debian 12 and 13 containers and then checks every entry of this table there.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from provision.errors import InputError

# podman keeps its helpers outside PATH; iptables and nft live in sbin.
SEARCH_PATH = (os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin",
               "/usr/lib/podman", "/usr/libexec/podman", "/usr/lib/cni", "/opt/cni/bin")


@dataclass(frozen=True)
class Need:
    alternatives: tuple[str, ...]     # program names (any one is enough)
    package: str                       # the Debian package(s) that bring it
    why: str


NEEDS: tuple[Need, ...] = (
    Need(("podman",), "podman", "runs the lab's nodes"),
    Need(("runc",), "runc", "the OCI runtime that can run systemd containers"),
    Need(("conmon",), "conmon", "podman's container monitor"),
    Need(("netavark", "dnsname"), "netavark",
         "podman's network backend (netavark; or CNI with the dnsname plugin)"),
    Need(("aardvark-dns", "dnsname"), "aardvark-dns",
         "name resolution between lab nodes (netavark's DNS; or CNI's dnsname)"),
    Need(("iptables", "nft"), "iptables nftables",
         "the firewall tool netavark calls to set up the lab network"),
    Need(("mmdebstrap", "debootstrap"), "mmdebstrap", "builds the node image from Debian"),
    Need(("ssh",), "openssh-client", "reaches the nodes"),
    Need(("ssh-keygen",), "openssh-client", "makes the lab's SSH key"),
    Need(("tar",), "tar", "packs the node image"),
)


def find(program: str) -> str | None:
    return shutil.which(program, path=os.pathsep.join(p for p in SEARCH_PATH if p))


def missing() -> list[Need]:
    return [n for n in NEEDS if not any(find(a) for a in n.alternatives)]


def require() -> None:
    """Raise naming the first missing program, its package and the fix."""
    gaps = missing()
    if not gaps:
        return
    first = gaps[0]
    more = f" (and {', '.join(g.alternatives[0] for g in gaps[1:])})" if gaps[1:] else ""
    packages = " ".join(dict.fromkeys(p for g in gaps for p in g.package.split()))
    raise InputError(f"the lab needs {' or '.join(first.alternatives)}: {first.why}; "
                     f"not installed{more}",
                     hint=f"apt-get install {packages}  (or: sudo bash scripts/system-deps.sh)")


def shell_check() -> str:
    """A POSIX sh script that exits 1 naming every missing need (for bare test machines)."""
    lines = [f'PATH="$PATH:{":".join(SEARCH_PATH[1:])}"', "rc=0"]
    for need in NEEDS:
        test = " || ".join(f"command -v {a} >/dev/null" for a in need.alternatives)
        lines.append(f"{{ {test}; }} || {{ echo 'missing: {'|'.join(need.alternatives)}'; "
                     f"rc=1; }}")
    lines.append("exit $rc")
    return "\n".join(lines) + "\n"

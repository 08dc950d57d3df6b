"""What a lab is: names, ports, addresses and paths, from defaults and the environment.

A second lab can run beside the user's (tests do this) by changing the name
prefix, the SSH port base, the subnet and the state directory; nothing else in
the lab code knows a fixed name.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from provision.errors import InputError
from provision.paths import lab_state_dir

REPO_ROOT = Path(__file__).resolve().parents[2]   # the checkout (tests use it)
# Debian 13: its Slurm (24.11) is one forge supports (23.11 or newer, cgroup v2);
# Debian 12's 22.05 is not.
SUITE = "trixie"
DEFAULT_IMAGE = f"localhost/forge-lab-node:{SUITE}"
BASE_IMAGE = f"localhost/forge-lab-node:{SUITE}-base"
MAX_NODES = 32

# The packages every lab node has; the Slurm packages are baked into the
# default image so a lab deploy does not wait on apt (the roles still declare
# them, so the same roles install them on real nodes).
BASE_PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "python3-apt", "sudo",
    "iproute2", "procps", "ca-certificates",
)
SLURM_PACKAGES = ("slurmd", "slurmctld", "slurm-client", "munge", "chrony", "pciutils", "kmod")


@dataclass(frozen=True)
class LabConfig:
    """One lab. ``prefix`` names containers (``lab-n1``), the network and the image use."""

    state_dir: Path
    prefix: str = "lab-n"
    nodes: int = 3
    ssh_port_base: int = 2200          # node i listens on 127.0.0.1:(base + i)
    subnet: str = "10.89.0.0/24"       # node i gets host address 10 + i
    network: str = "forge-lab-net"
    image: str = DEFAULT_IMAGE
    fake_gpus: int = 2
    cluster_name: str = "lab"

    def __post_init__(self) -> None:
        if not 1 <= self.nodes <= MAX_NODES:
            raise InputError(f"--nodes: {self.nodes} is out of range 1..{MAX_NODES}")
        if not 1024 <= self.ssh_port_base <= 65535 - MAX_NODES:
            raise InputError(f"lab SSH port base {self.ssh_port_base} is out of range")
        try:
            net = ipaddress.ip_network(self.subnet)
        except ValueError as exc:
            raise InputError(f"lab subnet {self.subnet!r}: {exc}") from None
        if net.num_addresses < 64:
            raise InputError(f"lab subnet {self.subnet} is too small (need a /26 or larger)")

    @property
    def owner(self) -> str:
        """This lab's identity (its state directory): labels every container and network it
        makes, so two checkouts on one machine never remove each other's lab."""
        import hashlib

        return hashlib.sha256(str(self.state_dir.resolve()).encode()).hexdigest()[:16]

    @property
    def node_names(self) -> list[str]:
        return [f"{self.prefix}{i}" for i in range(1, self.nodes + 1)]

    def ssh_port(self, index: int) -> int:
        """SSH port of node ``index`` (1-based)."""
        return self.ssh_port_base + index

    def address(self, index: int) -> str:
        return str(ipaddress.ip_network(self.subnet).network_address + 10 + index)

    @property
    def ssh_key(self) -> Path:
        return self.state_dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.state_dir / "known_hosts"

    @property
    def spec_path(self) -> Path:
        return self.state_dir / "site.yaml"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "lab.json"

    def with_nodes(self, nodes: int) -> LabConfig:
        return replace(self, nodes=nodes)


def from_env(env: Mapping[str, str] | None = None, *, nodes: int | None = None) -> LabConfig:
    """The lab named by ``FORGE_LAB_*`` variables, else the default one under ``.lab/``."""
    env = os.environ if env is None else env
    state = Path(env.get("FORGE_LAB_DIR") or lab_state_dir())
    kwargs: dict[str, object] = {"state_dir": state.resolve()}
    if "FORGE_LAB_PREFIX" in env:
        kwargs["prefix"] = env["FORGE_LAB_PREFIX"]
        kwargs["network"] = f"{env['FORGE_LAB_PREFIX'].rstrip('-')}-net"
    if "FORGE_LAB_SSH_PORT_BASE" in env:
        kwargs["ssh_port_base"] = _int(env, "FORGE_LAB_SSH_PORT_BASE")
    if "FORGE_LAB_SUBNET" in env:
        kwargs["subnet"] = env["FORGE_LAB_SUBNET"]
    if "FORGE_LAB_IMAGE" in env:
        kwargs["image"] = env["FORGE_LAB_IMAGE"]
    if nodes is not None:
        kwargs["nodes"] = nodes
    return LabConfig(**kwargs)  # type: ignore[arg-type]


def _int(env: Mapping[str, str], name: str) -> int:
    try:
        return int(env[name])
    except ValueError:
        raise InputError(f"{name}={env[name]!r} is not an integer") from None

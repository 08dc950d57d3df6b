"""``forge lab up|down|status``: start, stop and describe a lab.

Old containers are removed by name before new ones start (a previous run or
CI job may have left some), and ``up`` returns only when every node runs
systemd, answers SSH with a verified host key, and the lab's site spec is
written.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from provision import proc
from provision.errors import ForgeError
from provision.fsutil import atomic_write_text
from provision.lab import image, keys, podman, prereqs, sitespec
from provision.lab.config import MAX_NODES, LabConfig

READY_TIMEOUT_S = 90.0

Log = Callable[[str], None]


class LabError(ForgeError):
    """The lab could not be started or inspected (an environment problem)."""


@dataclass(frozen=True)
class NodeStatus:
    name: str
    state: str           # podman's state: running, exited, ... or "absent"
    ssh: str             # "127.0.0.1:2201"
    address: str


@dataclass(frozen=True)
class LabInfo:
    nodes: tuple[NodeStatus, ...]
    spec: str
    ssh_key: str
    known_hosts: str
    image: str
    network: str
    seconds: float = 0.0


def _must(result: proc.Completed, what: str) -> proc.Completed:
    if not result.ok:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise LabError(f"{what} failed (exit {result.returncode}): "
                       + (detail[-1] if detail else "no output"),
                       hint="is podman installed and usable by this user? (scripts/system-deps.sh)")
    return result


def podman_available() -> bool:
    try:
        return proc.run([podman.PODMAN, "info", "--format", "{{.Host.OCIRuntime.Name}}"],
                        timeout=30).ok
    except proc.ToolMissing:
        return False


def up(cfg: LabConfig, *, log: Log = lambda _m: None, mirror_url: str | None = None,
       airgapped: bool = False) -> LabInfo:
    """Start a fresh lab (removing any old nodes of the same names) and wait until it is usable.

    ``airgapped`` removes each node's default route: the nodes then reach the
    lab subnet (each other, a mirror container) and nothing beyond it, while
    SSH from this host still works (it arrives from the on-link gateway).
    """
    started = time.monotonic()
    prereqs.require()  # name the missing program and the fix before touching anything
    if not podman_available():
        raise LabError("podman is not installed or cannot run here",
                       hint="apt-get install podman runc mmdebstrap (scripts/system-deps.sh)")
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    keys.ensure_key(cfg.ssh_key)
    if image.build_image(cfg.image, log=log):
        log(f"image {cfg.image} built")
    _remove(cfg)
    _must(proc.run(podman.network_create(cfg), timeout=60), f"creating network {cfg.network}")
    for index in range(1, cfg.nodes + 1):
        _must(proc.run(podman.run_node(cfg, index), timeout=120),
              f"starting {cfg.prefix}{index}")
    log(f"started {cfg.nodes} nodes on {cfg.network} ({cfg.subnet})")
    pub = cfg.ssh_key.with_suffix(".pub")
    host_keys: dict[int, str] = {}
    for index, name in enumerate(cfg.node_names, start=1):
        _wait_systemd(name)
        _must(proc.run(podman.exec_(name, "install", "-d", "-m700", "/root/.ssh"), timeout=30),
              f"preparing {name}")
        _must(proc.run([podman.PODMAN, "cp", str(pub), f"{name}:/root/.ssh/authorized_keys"],
                       timeout=30), f"copying the lab key into {name}")
        _must(proc.run(podman.exec_(name, "chmod", "600", "/root/.ssh/authorized_keys"),
                       timeout=30), f"preparing {name}")
        host_keys[cfg.ssh_port(index)] = _wait_host_key(name)
        if airgapped:
            _must(proc.run(podman.exec_privileged(name, "ip", "route", "del", "default"),
                           timeout=30), f"cutting {name} off from outside the lab")
    keys.write_known_hosts(cfg.known_hosts, host_keys)
    for index, name in enumerate(cfg.node_names, start=1):
        _wait_ssh(cfg, index, name)
    _check_names_resolve(cfg)
    spec = sitespec.write(cfg, mirror_url=mirror_url)
    info = LabInfo(
        nodes=tuple(NodeStatus(n, "running", f"127.0.0.1:{cfg.ssh_port(i)}", cfg.address(i))
                    for i, n in enumerate(cfg.node_names, start=1)),
        spec=str(spec), ssh_key=str(cfg.ssh_key), known_hosts=str(cfg.known_hosts),
        image=cfg.image, network=cfg.network, seconds=round(time.monotonic() - started, 1),
    )
    atomic_write_text(cfg.state_file, json.dumps(
        {"schema_version": 1, "prefix": cfg.prefix, "nodes": cfg.nodes, **asdict(info)},
        indent=2) + "\n")
    log(f"lab ready in {info.seconds} s; site spec {spec}")
    return info


def down(cfg: LabConfig, *, log: Log = lambda _m: None) -> None:
    """Remove the lab's containers and network (the key and state directory stay)."""
    if not podman_available():
        raise LabError("podman is not installed or cannot run here")
    _remove(cfg)
    if cfg.state_file.exists():
        cfg.state_file.unlink()
    log(f"removed lab {cfg.prefix}* and network {cfg.network}")


def status(cfg: LabConfig) -> list[NodeStatus]:
    """The lab's containers as podman sees them (nodes missing from podman are ``absent``)."""
    if not podman_available():
        raise LabError("podman is not installed or cannot run here")
    result = _must(proc.run(podman.ps_json(cfg), timeout=30), "podman ps")
    rows = json.loads(result.stdout or "[]")
    seen = {row["Names"][0]: row.get("State", "unknown") for row in rows}
    count = max(cfg.nodes, _node_count(seen, cfg.prefix))
    wide = cfg.with_nodes(min(count, MAX_NODES))
    return [NodeStatus(name, seen.get(name, "absent"), f"127.0.0.1:{wide.ssh_port(i)}",
                       wide.address(i))
            for i, name in enumerate(wide.node_names, start=1)]


def _node_count(seen: dict[str, str], prefix: str) -> int:
    indices = [int(n[len(prefix):]) for n in seen if n[len(prefix):].isdigit()]
    return max(indices, default=0)


def _remove(cfg: LabConfig) -> None:
    """Remove this lab's containers and network; refuse to touch anyone else's."""
    rows = json.loads(_must(proc.run(podman.ps_all(), timeout=30), "podman ps").stdout or "[]")
    mine = {row["Names"][0] for row in rows
            if (row.get("Labels") or {}).get(podman.OWNER) == cfg.owner}
    wanted = set(cfg.node_names) | {f"{cfg.prefix}mirror"}
    foreign = sorted(row["Names"][0] for row in rows
                     if row["Names"][0] in wanted and row["Names"][0] not in mine)
    if foreign:
        raise LabError(f"containers {', '.join(foreign)} belong to another lab (not made from "
                       f"{cfg.state_dir}); forge leaves them alone",
                       hint="give this lab its own names: FORGE_LAB_PREFIX, FORGE_LAB_DIR, "
                            "FORGE_LAB_SUBNET, FORGE_LAB_SSH_PORT_BASE (docs/lab.md); if they "
                            f"are yours from an older forge: podman rm -f {' '.join(foreign)}")
    if mine:
        _must(proc.run(podman.rm(sorted(mine)), timeout=120), "removing old lab nodes")
    if not proc.run(podman.network_exists(cfg), timeout=30).ok:
        return
    inspected = json.loads(_must(proc.run(podman.network_inspect(cfg), timeout=30),
                                 f"inspecting network {cfg.network}").stdout or "[]")
    labels = (inspected[0].get("labels") or {}) if inspected else {}
    if labels.get(podman.OWNER) != cfg.owner:
        raise LabError(f"network {cfg.network} belongs to another lab; forge leaves it alone",
                       hint="FORGE_LAB_PREFIX names this lab's network differently (docs/lab.md)")
    _must(proc.run(podman.network_rm(cfg), timeout=60), f"removing network {cfg.network}")


def _wait_systemd(name: str, timeout: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        # The first exec can race systemd ("Failed to connect to bus"): retry.
        result = proc.run(podman.exec_(name, "systemctl", "is-system-running", "--wait"),
                          timeout=60)
        last = result.stdout.strip()
        if last in ("running", "degraded"):
            return
        time.sleep(0.3)
    raise LabError(f"{name}: systemd did not finish booting in {timeout:.0f} s (state {last!r})")


def _wait_host_key(name: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        key = keys.read_host_key(name)
        if key:
            return key
        time.sleep(0.2)
    raise LabError(f"{name}: no SSH host key appeared in {timeout:.0f} s")


def _wait_ssh(cfg: LabConfig, index: int, name: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        result = proc.run(keys.ssh_argv(cfg.ssh_key, cfg.known_hosts, cfg.ssh_port(index),
                                        "true"), timeout=15)
        if result.ok:
            return
        last = result.stderr.strip()
        time.sleep(0.3)
    raise LabError(f"{name}: SSH on 127.0.0.1:{cfg.ssh_port(index)} not ready: {last}")


def _check_names_resolve(cfg: LabConfig) -> None:
    """Slurm and the roles address nodes by name: fail now, with the fix, if podman's DNS is off."""
    names = cfg.node_names
    if len(names) < 2:
        return
    result = proc.run(podman.exec_(names[-1], "getent", "hosts", names[0]), timeout=30)
    if not result.ok:
        raise LabError(
            f"{names[-1]} cannot resolve {names[0]}: the podman network {cfg.network} has no DNS",
            hint="apt-get install netavark aardvark-dns (podman's netavark backend) or "
                 "golang-github-containernetworking-plugin-dnsname (podman on CNI), then "
                 "forge lab up again (scripts/system-deps.sh installs both)")


def read_info(cfg: LabConfig) -> dict[str, object] | None:
    """What the last ``up`` recorded, or None."""
    if not cfg.state_file.exists():
        return None
    data: dict[str, object] = json.loads(cfg.state_file.read_text(encoding="utf-8"))
    return data


def spec_path(cfg: LabConfig) -> Path:
    info = read_info(cfg)
    if info is None:
        raise LabError(f"no lab is up (no {cfg.state_file})", hint="run: forge lab up")
    return Path(str(info["spec"]))

"""podman command lines for the lab, built by pure functions (nothing runs here).

Always ``--runtime runc`` and explicit ulimits: crun cannot run systemd
containers on hybrid-cgroup hosts, and podman's default nofile exceeds the
hard limit of sandboxed hosts (see docs/lab.md).
"""

from __future__ import annotations

from provision.lab.config import LabConfig

PODMAN = "podman"
LABEL = "io.forge.lab"
OWNER = "io.forge.lab.owner"


def network_create(cfg: LabConfig, *, internal: bool = False) -> list[str]:
    argv = [PODMAN, "network", "create", "--subnet", cfg.subnet, "--label", f"{LABEL}=1",
            "--label", f"{OWNER}={cfg.owner}"]
    if internal:
        argv.append("--internal")
    return [*argv, cfg.network]


def network_exists(cfg: LabConfig) -> list[str]:
    return [PODMAN, "network", "exists", cfg.network]


def network_inspect(cfg: LabConfig) -> list[str]:
    return [PODMAN, "network", "inspect", "--format", "json", cfg.network]


def network_rm(cfg: LabConfig) -> list[str]:
    return [PODMAN, "network", "rm", "--force", cfg.network]


def run_node(cfg: LabConfig, index: int, *, image: str | None = None,
             volumes: tuple[str, ...] = ()) -> list[str]:
    """``podman run`` for node ``index`` (1-based): systemd as PID 1, SSH published on loopback."""
    name = f"{cfg.prefix}{index}"
    argv = [
        PODMAN, "--runtime", "runc", "run", "--detach", "--name", name, "--hostname", name,
        "--label", f"{LABEL}={cfg.prefix}", "--label", f"{OWNER}={cfg.owner}",
        "--network", cfg.network, "--ip", cfg.address(index),
        "--publish", f"127.0.0.1:{cfg.ssh_port(index)}:22",
        "--ulimit", "nofile=10000:10000", "--ulimit", "nproc=10000:10000",
        "--systemd=always",
    ]
    for gpu in range(cfg.fake_gpus):
        # Placeholder GPU device nodes for Slurm GRES (no mknod in containers).
        argv += ["--device", f"/dev/null:/dev/lab-fake-gpu{gpu}"]
    for vol in volumes:
        argv += ["--volume", vol]
    return [*argv, image or cfg.image, "/sbin/init"]


def rm(names: list[str]) -> list[str]:
    return [PODMAN, "rm", "--force", "--ignore", "--time", "2", *names]


def exec_(name: str, *command: str) -> list[str]:
    return [PODMAN, "exec", name, *command]


def exec_privileged(name: str, *command: str) -> list[str]:
    """For changing the node's own network namespace (the container itself stays unprivileged)."""
    return [PODMAN, "exec", "--privileged", name, *command]


def ps_json(cfg: LabConfig) -> list[str]:
    """This lab's containers (by owner label: never another checkout's)."""
    return [PODMAN, "ps", "--all", "--format", "json", "--filter", f"label={OWNER}={cfg.owner}"]


def ps_all() -> list[str]:
    return [PODMAN, "ps", "--all", "--format", "json"]


def image_exists(image: str) -> list[str]:
    return [PODMAN, "image", "exists", image]


def stop(name: str) -> list[str]:
    return [PODMAN, "stop", "--time", "2", name]


def start(name: str) -> list[str]:
    return [PODMAN, "start", name]

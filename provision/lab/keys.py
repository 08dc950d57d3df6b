"""The lab's SSH client key and a known_hosts file built from the nodes' own host keys.

Host keys are read through ``podman exec`` (a local, trusted channel), so
Ansible and ssh run with strict host-key checking against the lab, as they
must against a real cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from provision import proc
from provision.errors import ForgeError
from provision.fsutil import atomic_write_text
from provision.lab import podman

HOST_KEY = "/etc/ssh/ssh_host_ed25519_key.pub"


def ensure_key(path: Path) -> None:
    """Create an ed25519 key pair at ``path`` unless one exists (never overwrite a key)."""
    if path.exists() and path.with_suffix(".pub").exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    result = proc.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "forge-lab",
                       "-f", str(path)], timeout=30)
    if not result.ok:
        raise ForgeError(f"ssh-keygen failed: {result.stderr.strip()}")
    path.chmod(0o600)


def known_hosts_line(port: int, host_key: str, host: str = "127.0.0.1") -> str:
    """``[127.0.0.1]:2201 ssh-ed25519 AAAA...`` (the comment is dropped)."""
    parts = host_key.split()
    if len(parts) < 2 or not parts[0].startswith("ssh-"):
        raise ForgeError(f"unexpected host key text: {host_key[:40]!r}")
    return f"[{host}]:{port} {parts[0]} {parts[1]}"


def read_host_key(container: str) -> str | None:
    result = proc.run(podman.exec_(container, "cat", HOST_KEY), timeout=15)
    return result.stdout.strip() if result.ok and result.stdout.strip() else None


def write_known_hosts(path: Path, keys_by_port: Mapping[int, str]) -> None:
    lines = [known_hosts_line(port, key) for port, key in sorted(keys_by_port.items())]
    atomic_write_text(path, "\n".join(lines) + "\n", mode=0o644)


def ssh_argv(key: Path, known_hosts: Path, port: int, *command: str,
             user: str = "root", host: str = "127.0.0.1") -> list[str]:
    """An ssh command line against a lab node, host keys checked strictly."""
    return [
        "ssh", "-i", str(key), "-p", str(port),
        "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={known_hosts}", "-o", "ControlMaster=no",
        "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR",
        f"{user}@{host}", *command,
    ]

"""Fixtures: a real OpenSSH server on loopback (a private host key, our client key)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Sshd:
    port: int
    key: Path
    known_hosts: Path
    host_pub: str
    user: str


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    if not os.path.exists(SSHD):
        pytest.skip("OpenSSH server not installed (apt-get install openssh-server)")
    d = tmp_path_factory.mktemp("sshd")
    for args in (["-t", "ed25519", "-f", str(d / "host_key")],
                 ["-t", "ed25519", "-f", str(d / "client_key")]):
        subprocess.run(["ssh-keygen", "-q", "-N", "", "-C", "forge-test", *args], check=True)
    auth = d / "authorized_keys"
    auth.write_text((d / "client_key.pub").read_text())
    auth.chmod(0o600)
    port = _free_port()
    user = os.environ.get("USER") or "root"
    config = d / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nListenAddress 127.0.0.2\nHostKey {d / 'host_key'}\n"
        f"AuthorizedKeysFile {auth}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        f"PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nUsePAM no\n"
        f"StrictModes no\nPidFile {d / 'sshd.pid'}\nMaxSessions 64\nMaxStartups 100:30:200\n"
        "LogLevel ERROR\n")
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
    host_pub = (d / "host_key.pub").read_text().split()
    known = d / "known_hosts"
    known.write_text("".join(f"[{ip}]:{port} {host_pub[0]} {host_pub[1]}\n"
                             for ip in ("127.0.0.1", "127.0.0.2")))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("sshd did not start: " + (proc.stderr.read().decode() if proc.stderr else ""))
    yield Sshd(port, d / "client_key", known, " ".join(host_pub[:2]), user)
    proc.terminate()
    proc.wait(timeout=10)

"""Helpers for the lab tests: the lab handle and waits."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from provision.deploy.driver import DeployResult
from provision.lab import lab
from provision.lab.config import REPO_ROOT, LabConfig

PREFIX = "forge-t-n"
# What the lab tests deploy: the whole stack, as `forge deploy` does.
LAB_PLAYBOOK = REPO_ROOT / "playbooks" / "site.yml"


def podman_usable() -> bool:
    return shutil.which("podman") is not None and shutil.which("runc") is not None \
        and lab.podman_available()


@dataclass(frozen=True)
class Lab:
    cfg: LabConfig
    info: lab.LabInfo
    spec: Path
    runs: Path

    def exec(self, index: int, *command: str, timeout: float = 60) -> str:
        out = subprocess.run(["podman", "exec", f"{self.cfg.prefix}{index}", *command],
                             capture_output=True, text=True, timeout=timeout, check=True)
        return out.stdout

    @property
    def names(self) -> list[str]:
        return self.cfg.node_names



def wait_all_idle(lab_: Lab, timeout: float = 60) -> str:
    """sinfo until every node is idle; returns the last output."""
    deadline = time.monotonic() + timeout
    out = ""
    while time.monotonic() < deadline:
        out = lab_.exec(1, "sinfo", "--noheader", "--Node", "--format=%N %T")
        states = dict(line.split() for line in out.splitlines() if line.strip())
        if sorted(states) == sorted(lab_.names) and set(states.values()) == {"idle"}:
            return out
        time.sleep(1)
    return out


@dataclass(frozen=True)
class Deployed:
    lab: Lab
    first: DeployResult

"""Helpers for the lab tests: the lab handle, the claim on the test labs' names, and waits."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from provision.deploy.driver import DeployResult
from provision.lab import lab, podman
from provision.lab.config import REPO_ROOT, LabConfig

PREFIX = "forge-t-n"
# Every lab the tests start, as container prefix -> network. Their names, SSH ports and
# subnets are fixed, so one test session at a time may hold them (claim_test_labs).
TEST_LABS: Mapping[str, str] = {
    PREFIX: "forge-t-net",
    "forge-a-n": "forge-a-net",
    "forge-r-n": "forge-r-net",
    "forge-dns-n": "forge-dns-net",
}
TEST_LABS_LOCK = Path(tempfile.gettempdir()) / f"forge-test-labs-{os.getuid()}.lock"
# What the lab tests deploy: the whole stack, as `forge deploy` does.
LAB_PLAYBOOK = REPO_ROOT / "playbooks" / "site.yml"


def podman_usable() -> bool:
    return shutil.which("podman") is not None and shutil.which("runc") is not None \
        and lab.podman_available()


class LabNamesHeld(RuntimeError):
    """Another live test session holds the test labs' names, ports and subnets."""


@contextmanager
def claim_test_labs(*, lock: Path = TEST_LABS_LOCK, labs: Mapping[str, str] = TEST_LABS,
                    wait_s: float = 2400.0) -> Iterator[None]:
    """Hold the test labs for this session, first removing what a killed session left.

    A session killed before its teardown (a timeout, a cut-off CI job) leaves its
    containers running under another state directory, which `forge lab up` rightly
    refuses to touch. Whoever holds the lock is the only live session that can have
    made containers of these names, so any found on taking it are stale. The lock is an
    flock: the kernel drops it when its holder dies, however it dies.
    """
    with lock.open("a+") as handle:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "unknown"
                    raise LabNamesHeld(f"another test session (pid {holder}) has held the test "
                                       f"labs ({lock}) for over {wait_s:g} s") from None
                time.sleep(min(5.0, wait_s))
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            reclaim_stale_test_labs(labs)
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def reclaim_stale_test_labs(labs: Mapping[str, str]) -> list[str]:
    """Remove the containers (nodes and mirror) and networks of ``labs``; returns their names.

    Only for a caller holding the claim: it removes whatever owner made them.
    """
    rows = json.loads(_podman("ps", "--all", "--format", "json").stdout or "[]")
    labels = {prefix for prefix in labs} | {f"{prefix}mirror" for prefix in labs}
    stale = sorted(row["Names"][0] for row in rows
                   if (row.get("Labels") or {}).get(podman.LABEL) in labels)
    if stale:
        _podman("rm", "--force", "--ignore", "--time", "2", *stale)
    for network in labs.values():
        if _podman("network", "exists", network).returncode == 0:
            _podman("network", "rm", "--force", network)
            stale.append(network)
    return stale


def _podman(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=180,
                          check=False)


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

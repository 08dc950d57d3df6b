"""The test labs survive a killed test session: the next session takes the claim and removes
what the dead one left (containers of another owner, which `forge lab up` refuses), while a
live session's claim is waited for, and labs of other names are never touched."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from lab.labkit import LabNamesHeld, claim_test_labs, podman_usable
from provision.lab import podman

pytestmark = pytest.mark.lab

HOLD = ("import fcntl, sys, time; f = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX); "
        "print('held', flush=True); time.sleep(600)")


def _sh(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120)


@pytest.fixture
def image() -> str:
    if not podman_usable():
        pytest.skip("podman with runc cannot run here")
    images = _sh("podman", "images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    if not images:
        pytest.skip("no local image to create a stand-in container from")
    return images[0]


def test_a_killed_sessions_containers_and_network_are_reclaimed(tmp_path: Path,
                                                                 image: str) -> None:
    tag = uuid.uuid4().hex[:6]
    stale, keep = f"forge-stale{tag}-n", f"forge-keep{tag}-n"
    network = f"forge-stale{tag}-net"
    made = [f"{stale}1", f"{stale}mirror", f"{keep}1"]
    try:
        assert _sh("podman", "network", "create", "--label", f"{podman.LABEL}=1",
                   network).returncode == 0
        for name, label in zip(made, [stale, f"{stale}mirror", keep], strict=True):
            assert _sh("podman", "create", "--name", name, "--label", f"{podman.LABEL}={label}",
                       "--label", f"{podman.OWNER}=a-dead-session", image,
                       "true").returncode == 0
        with claim_test_labs(lock=tmp_path / "lock", labs={stale: network}):
            assert _sh("podman", "container", "exists", f"{stale}1").returncode == 1
            assert _sh("podman", "container", "exists", f"{stale}mirror").returncode == 1
            assert _sh("podman", "network", "exists", network).returncode == 1
            assert _sh("podman", "container", "exists", f"{keep}1").returncode == 0
    finally:
        _sh("podman", "rm", "--force", "--ignore", *made)
        _sh("podman", "network", "rm", "--force", network)


def test_a_live_claim_is_waited_for_and_a_dead_ones_is_taken(tmp_path: Path, image: str) -> None:
    lock = tmp_path / "lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LabNamesHeld, match="another test session"), \
                claim_test_labs(lock=lock, labs={}, wait_s=0.5):
            pass
        holder.send_signal(signal.SIGKILL)   # dies without any teardown
        holder.wait(timeout=30)
        with claim_test_labs(lock=lock, labs={}, wait_s=5):
            assert lock.read_text().split() == [str(os.getpid())]
    finally:
        holder.kill()
        holder.wait(timeout=30)


"""`forge lab` touches only its own lab: a container or network of the same names made by
another checkout (another state directory) is refused, named, and left alone."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from lab.labkit import podman_usable
from provision.lab import lab as lab_mod
from provision.lab import podman
from provision.lab.config import LabConfig
from provision.lab.lab import LabError

pytestmark = pytest.mark.lab


def _sh(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120)


def test_another_labs_container_and_network_are_left_alone(tmp_path: Path) -> None:
    if not podman_usable():
        pytest.skip("podman with runc cannot run here")
    images = _sh("podman", "images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    if not images:
        pytest.skip("no local image to create a stand-in container from")
    tag = uuid.uuid4().hex[:6]
    theirs = LabConfig(state_dir=tmp_path / "theirs", prefix=f"forge-own{tag}-n", nodes=1,
                       ssh_port_base=2460, subnet="10.89.171.0/24",
                       network=f"forge-own{tag}-net")
    ours = LabConfig(state_dir=tmp_path / "ours", prefix=theirs.prefix, nodes=1,
                     ssh_port_base=2460, subnet="10.89.171.0/24", network=theirs.network)
    name = f"{theirs.prefix}1"
    try:
        assert _sh(*podman.network_create(theirs)).returncode == 0
        assert _sh("podman", "create", "--name", name, "--label",
                   f"{podman.OWNER}={theirs.owner}", images[0], "true").returncode == 0
        with pytest.raises(LabError, match=f"containers {name} belong to another lab"):
            lab_mod.down(ours)
        assert _sh("podman", "container", "exists", name).returncode == 0
        _sh("podman", "rm", "--force", name)
        with pytest.raises(LabError, match="belongs to another lab"):
            lab_mod.down(ours)
        assert _sh("podman", "network", "exists", theirs.network).returncode == 0
        lab_mod.down(theirs)   # the owner may
        assert _sh("podman", "network", "exists", theirs.network).returncode != 0
    finally:
        _sh("podman", "rm", "--force", "--ignore", name)
        _sh("podman", "network", "rm", "--force", theirs.network)

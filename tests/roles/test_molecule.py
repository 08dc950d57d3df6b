"""Molecule scenarios of the roles that can be tested alone on a lab container
(no GPU, no RDMA device): converge, converge again with changed=0, verify."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from provision import proc

ROLES_DIR = Path(__file__).resolve().parents[2] / "playbooks" / "roles"
VENV_BIN = Path(sys.executable).parent
SCENARIOS = {
    # role[/scenario] (default: 'default'): what its verify step asserts
    "nvidia_driver": "skips without a GPU; fails naming forge_require_hardware when it is true; "
                     "the persistenced drop-in drops --no-persistence-mode, unattended upgrades off",
    "acceptance_tools": "perftest, numactl and /opt/forge/checks installed; DCGM skipped "
                        "without a GPU",
    "fabric_roce": "boot unit rendered and enabled, skipped by systemd without RDMA devices",
    "common": "limits, sshd and sudo settings, nouveau blacklist, /etc/hosts; no reboot; "
              "IOMMU off (valid value), ACS unit enabled and skipped in a container",
    "slurm": "two nodes, the compute one first in the inventory: one munge key, both idle, srun",
    "fabric_infiniband": "DOCA asked for, no adapter: the inbox rdma-core alone, no DOCA repository, "
                         "no IPoIB or OpenSM files; both roles fail naming forge_require_hardware",
    "gpudirect": "no GPU, no RDMA device: skipped, no modules-load file; fails when hardware is required",
    "slurm/accounting": "MariaDB + slurmdbd: cluster registered, a job recorded by sacct, gres/gpu TRES, "
                        "password files 0600/0400",
}


@pytest.mark.lab
@pytest.mark.slow
@pytest.mark.parametrize("scenario_id", sorted(SCENARIOS))
def test_molecule_scenario(scenario_id: str, podman_ready: str) -> None:
    role, _, scenario = scenario_id.partition("/")
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
           "FORGE_LAB_IMAGE": podman_ready, "ANSIBLE_NOCOLOR": "1", "NO_COLOR": "1"}
    result = proc.run([str(VENV_BIN / "molecule"), "test", "-s", scenario or "default"],
                      timeout=900, env=env, cwd=str(ROLES_DIR / role))
    output = result.stdout + result.stderr
    assert result.ok, f"{scenario_id}: {SCENARIOS[scenario_id]}\n{output[-6000:]}"
    assert "idempotence" in output

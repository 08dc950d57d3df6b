"""The slurm role asserts srun has its PMIx plugin (forge's NCCL runs across nodes use
``srun --mpi=pmix``), reading ``srun --mpi=list`` as real Slurm versions print it, with
real Ansible."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from provision import proc

from .conftest import HERE, VENV_BIN, ansible_env

# Slurm 24.11.5 of Debian 13 on the forge lab's nodes, stdout (srun --mpi=list)
LAB_2411 = ("MPI plugin types are...\n\tnone\n\tpmix\n\tcray_shasta\n\tpmi2\n"
            "specific pmix plugin versions available: pmix_v5\n")
# Slurm 17.11 without PMIx, on stderr (clusterinthecloud/ansible#24)
NO_PMIX_1711 = "srun: MPI types are...\nsrun: openmpi\nsrun: none\nsrun: pmi2\n"
# OpenHPC's Slurm with PMIx, on stderr (stackhpc/ansible-role-openhpc#22, one line there)
OPENHPC = ("srun: MPI types are...\nsrun: openmpi\nsrun: none\nsrun: pmi2\nsrun: pmix_v2\n"
           "srun: pmix\n")


@pytest.mark.parametrize("stdout, stderr, listed", [
    (LAB_2411, "", True), ("", NO_PMIX_1711, False), ("", OPENHPC, True),
    ("MPI plugin types are...\n\tnone\n\tpmi2\nspecific pmix plugin versions available: \n", "",
     False),
])
def test_pmix_is_read_from_srun_mpi_list(stdout: str, stderr: str, listed: bool,
                                         tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("localhost ansible_connection=local "
                         f"ansible_python_interpreter={sys.executable}\n")
    extra = {"slurm_mpi_list": {"stdout_lines": stdout.splitlines(),
                                "stderr_lines": stderr.splitlines()}}
    result = proc.run([str(VENV_BIN / "ansible-playbook"), "-i", str(inventory),
                       str(HERE / "slurm_mpi_list.yml"), "-e", json.dumps(extra)],
                      timeout=180, env=ansible_env(tmp_path), cwd=str(tmp_path))
    out = result.stdout + result.stderr
    assert result.ok, out[-3000:]
    assert re.search(r"PMIX=(\w+);", out)[1] == str(listed), out[-2000:]  # type: ignore[index]

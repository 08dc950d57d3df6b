"""nccl-tests inside a per-node srun step: the collector starts it as an MPI singleton.

nccl-tests is built with MPI=1 for the runs across nodes. Inside the step that `--via slurm`
wraps every node in, Open MPI 4.x (Debian 12, Ubuntu 22.04 and 24.04, RHEL 9) refuses to
start such a program without PMI: with the environment of a real srun step it printed "The
application appears to have been direct launched using "srun", but OMPI was not built with
SLURM's PMI support" (Open MPI 4.1.4, Debian 12), SLURM_NODELIST alone being enough; Open MPI
5.0.7 (Debian 13) starts a singleton. Measured in the lab and recorded in docs/checks.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from provision.checks.base import Context
from provision.checks.nccl import Nccl, NcclOptions
from provision.expectations import plan_site
from provision.node_programs.collect import run_command
from provision.spec import load_site

ROOT = Path(__file__).resolve().parents[2]
#: part of `srun -N1 env` in the lab's Slurm 24.11 step (MpiDefault=none)
STEP_ENV = {"SLURM_NODELIST": "lab-n2", "SLURM_JOB_ID": "8", "SLURM_STEP_ID": "0",
            "SLURM_PROCID": "0", "SLURM_STEP_NODELIST": "lab-n2", "SLURMD_NODENAME": "lab-n2",
            "PMIX_RANK": "0", "OMPI_MCA_plm_slurm_args": "--external-launcher",
            "CUDA_VISIBLE_DEVICES": "0,1"}
PRINT_ENV = [sys.executable, "-c", "import os, json; print(json.dumps(dict(os.environ)))"]


def _child_env(monkeypatch: pytest.MonkeyPatch, **spec: object) -> dict[str, str]:
    import json

    for k, v in STEP_ENV.items():
        monkeypatch.setenv(k, v)
    done = run_command({"argv": PRINT_ENV, "timeout": 30, **spec})
    assert done["returncode"] == 0, done["stderr"]
    env: dict[str, str] = json.loads(done["stdout"])
    return env


def test_a_singleton_leaves_the_job_steps_mpi_world(monkeypatch: pytest.MonkeyPatch) -> None:
    env = _child_env(monkeypatch, mpi_singleton=True, env={"NCCL_DEBUG": "INFO"})
    assert not [k for k in env if k.startswith(("SLURM_", "PMI_", "PMIX_"))]
    # what binds the GPUs and the check's own variables stay
    assert env["CUDA_VISIBLE_DEVICES"] == "0,1" and env["NCCL_DEBUG"] == "INFO"
    assert env["SLURMD_NODENAME"] == "lab-n2"       # not a job-step variable Open MPI reads
    assert env["PATH"] == os.environ["PATH"]


def test_other_commands_keep_the_step_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    env = _child_env(monkeypatch)
    assert env["SLURM_NODELIST"] == "lab-n2" and env["PMIX_RANK"] == "0"


def test_every_node_local_nccl_run_is_a_singleton() -> None:
    site = load_site(ROOT / "site-specs" / "small.yaml")
    plan = plan_site(site).for_node("gpu001")
    req = Nccl().request(Context(site=site, nodes=("gpu001",), plan=plan,
                                 options=NcclOptions()))
    assert req["commands"] and all(c["mpi_singleton"] for c in req["commands"].values())
    assert any(k.startswith("pair:") for k in req["commands"])   # the bridged pairs too


@pytest.mark.skipif(shutil.which("mpicc") is None, reason="no MPI compiler (mpicc) here")
def test_an_mpi_program_runs_inside_a_step_environment(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "hello.c"
    src.write_text('#include <mpi.h>\n#include <stdio.h>\nint main(int c, char **v) { int r, n;'
                   ' MPI_Init(&c, &v); MPI_Comm_rank(MPI_COMM_WORLD, &r); MPI_Comm_size('
                   'MPI_COMM_WORLD, &n); printf("rank %d of %d\\n", r, n); MPI_Finalize(); }\n')
    subprocess.run(["mpicc", "-o", str(tmp_path / "hello"), str(src)], check=True)
    for k, v in STEP_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("OMPI_ALLOW_RUN_AS_ROOT", "1")
    monkeypatch.setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    done = run_command({"argv": [str(tmp_path / "hello")], "timeout": 60, "mpi_singleton": True})
    assert done["returncode"] == 0 and "rank 0 of 1" in done["stdout"], done["stderr"]

"""Pure argv builders, result classification and the payload bootstrap."""

from __future__ import annotations

import json
import sys

from provision import proc
from provision.remote.base import missing_tool
from provision.remote.mpi import mpirun_argv
from provision.remote.payload import python_program
from provision.remote.slurm import SrunOptions, sbatch_argv, srun_argv, time_limit


def test_srun_argv() -> None:
    argv = srun_argv(SrunOptions(nodes=("gpu001", "gpu002"), ntasks_per_node=8,
                                 gpus_per_node=8, mpi="pmix", time_limit_s=61),
                     ["all_reduce_perf", "-g", "1"])
    assert argv[:3] == ["srun", "--nodes=2", "--nodelist=gpu[001-002]"]
    assert "--immediate=30" in argv and "--time=2" in argv and "--mpi=pmix" in argv
    assert "--gpus-per-node=8" in argv
    assert argv[argv.index("--") + 1:] == ["all_reduce_perf", "-g", "1"]
    assert time_limit(1) == "1" and time_limit(600) == "10"


def test_sbatch_wraps_one_step() -> None:
    argv = sbatch_argv(SrunOptions(nodes=("a1",)), ["hostname"], "/tmp/x.out")
    assert argv[:2] == ["sbatch", "--wait"] and argv[-2] == "--wrap"
    assert "srun" in argv[-1] and "--immediate" not in argv[-1]


def test_mpirun_argv() -> None:
    argv = mpirun_argv(["a", "b"], 8, ["all_reduce_perf"], env={"NCCL_DEBUG": "WARN"})
    assert argv[argv.index("-np") + 1] == "16" and "a:8,b:8" in argv
    assert "NCCL_DEBUG=WARN" in argv and argv[-1] == "all_reduce_perf"


def test_missing_tool_wordings() -> None:
    assert missing_tool(127, "sh: 1: exec: nvidia-smi: not found\n") == "nvidia-smi"
    assert missing_tool(127, "bash: dcgmi: command not found\n") == "dcgmi"
    assert missing_tool(2, "slurmstepd: error: execve(): ib_write_bw: No such file or "
                           "directory\n") == "ib_write_bw"
    assert missing_tool(1, "nvidia-smi: not found in some log\n") is None
    assert missing_tool(0, "") is None


def test_payload_runs_the_collector_without_forge_installed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    request = {"facts": ["cpu", "memory"], "tools": ["sh", "forge-nope"],
               "commands": {"echo": {"argv": ["echo", "hi"]},
                            "gone": {"argv": ["forge-nope"]}}}
    argv, stdin = python_program("provision.node_programs.collect", [], [json.dumps(request)],
                                 python=sys.executable)
    # run from an empty directory with no PYTHONPATH: only the shipped source is importable
    done = proc.run(argv, timeout=30, input_text=stdin, cwd=str(tmp_path),
                    env={"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"})
    assert done.ok, done.stderr
    doc = json.loads(done.stdout)
    assert doc["facts"]["cpu"]["logical"] >= 1 and doc["facts"]["memory"]["mem_total_kib"] > 0
    assert doc["tools"]["sh"] and doc["tools"]["forge-nope"] is None
    assert doc["commands"]["echo"]["stdout"] == "hi\n"
    assert doc["commands"]["gone"]["missing"] == "forge-nope"
    assert doc["request"] == request

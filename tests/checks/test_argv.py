"""Every catalog check builds its command for a real GPU profile; node programs run here."""

from __future__ import annotations

import sys
from pathlib import Path

from provision import proc
from provision.checks import registry
from provision.checks.base import Check, Context, Raw
from provision.checks.nccl import NcclOptions
from provision.expectations import plan_site
from provision.spec import load_site

EXAMPLES = Path(__file__).resolve().parents[2] / "site-specs"


def _ctx(via: str = "slurm", node: str | None = "gpu001", check: Check | None = None
         ) -> Context:
    """A context for ``check`` (its default options), else with nccl's collectives set."""
    site = load_site(EXAMPLES / "small.yaml")
    plan = plan_site(site)
    nodes = tuple(n.name for n in site.nodes if n.name.startswith("gpu"))
    return Context(site, nodes, node, plan.for_node(node) if node else None, sys.executable,
                   via, check.Options() if check is not None else
                   NcclOptions(collectives="all_reduce,alltoall"), gpu_python=sys.executable)


def test_every_check_builds_its_command() -> None:
    for check in registry.CATALOG:
        if check.scope == "node":
            assert check.argv(_ctx(check=check))[0], check.name
        else:
            invs = check.invocations(_ctx(node=None, check=check))
            assert invs, check.name


def test_multinode_nccl_uses_srun_then_ring_pairs() -> None:
    invs = registry.get("nccl-multinode").invocations(_ctx(node=None))
    keys = [i.key for i in invs]
    assert keys[:5] == ["all_reduce-all", "gpu001+gpu002", "gpu002+gpu003", "gpu003+gpu004",
                        "gpu004+gpu001"]
    first = invs[0].argv
    assert first[0] == "srun" and "--ntasks-per-node=8" in first and "--mpi=pmix" in first
    assert "alltoall_perf" in {a for i in invs for a in i.argv}
    via_ssh = registry.get("nccl-multinode").invocations(_ctx("ssh", node=None))
    assert via_ssh[0].argv[0] == "mpirun"


def test_gpu_workloads_report_no_gpu_cleanly_here() -> None:
    for name in ("hbm", "sdc"):
        check = registry.get(name)
        ctx = _ctx(check=check)
        done = proc.run(check.argv(ctx), timeout=60, input_text=check.stdin(ctx))
        data = check.parse(Raw("gpu001", done.stdout, done.stderr, done.returncode))
        problems = check.sanity(data)
        assert done.returncode == 3 and problems and ("torch" in problems[0]
                                                      or "NVML" in problems[0]), problems


def test_gpu_workloads_run_with_the_venv_the_role_installs_the_collector_with_python3(
        tmp_path: Path) -> None:
    """HBM and SDC need CuPy or PyTorch, which acceptance_tools puts in its venv; the
    collector needs only the standard library."""
    import yaml

    from provision.checks.base import DEFAULT_GPU_PYTHON
    from provision.checks.service import interpreters

    role = yaml.safe_load((EXAMPLES.parent / "playbooks/roles/acceptance_tools/defaults/main.yml")
                          .read_text())
    assert f"{role['acceptance_tools_defaults']['venv']}/bin/python" == DEFAULT_GPU_PYTHON
    site = load_site(EXAMPLES / "small.yaml")
    assert interpreters(site) == ("python3", DEFAULT_GPU_PYTHON)
    plan = plan_site(site)
    ctx = Context(site, ("gpu001",), "gpu001", plan.for_node("gpu001"), "python3", "ssh",
                  registry.get("hbm").Options(), gpu_python="/opt/site/venv/bin/python")
    assert registry.get("hbm").argv(ctx)[0] == "/opt/site/venv/bin/python"
    from dataclasses import replace

    conformance = registry.get("conformance")
    assert conformance.argv(replace(ctx, options=conformance.Options()))[0] == "python3"

    doc = yaml.safe_load((EXAMPLES / "small.yaml").read_text())
    doc.setdefault("acceptance", {})["python"] = "/usr/bin/python3.12"
    only_python = tmp_path / "only-python.yaml"
    only_python.write_text(yaml.safe_dump(doc))
    # a spec that named acceptance.python alone meant it for every program
    assert interpreters(load_site(only_python)) == ("/usr/bin/python3.12",) * 2
    doc["acceptance"]["gpu_python"] = "/opt/gpu/bin/python"
    both = tmp_path / "both.yaml"
    both.write_text(yaml.safe_dump(doc))
    assert interpreters(load_site(both)) == ("/usr/bin/python3.12", "/opt/gpu/bin/python")

"""`forge check --via ssh|slurm` on the container lab, for real, and `forge analyze` of the run.

Uses the session's container lab (tests/conftest.py), deployed with the Slurm stack;
skipped with the reason where podman cannot run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lab.labkit import Deployed, wait_all_idle

from provision.cli.main import main
from provision.measurement import read_dicts

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab_spec(deployed: Deployed) -> Path:
    """The session lab, deployed with the Slurm stack, every node idle."""
    wait_all_idle(deployed.lab)
    return deployed.lab.spec


def _forge(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(args)
        raise SystemExit(0)
    return int(exc.value.code or 0)


@pytest.mark.parametrize("via", ["ssh", "slurm"])
def test_no_gpu_checks_on_the_lab(lab_spec: Path, tmp_path: Path, via: str) -> None:
    run = tmp_path / f"run-{via}"
    rc = _forge(["check", str(lab_spec), "--via", via, "--checks", "tools,conformance,slurm",
                 "-o", str(run)])
    verdict = json.loads((run / "verdict.json").read_text())
    assert rc == 0, verdict
    statuses = {c["check"]: {n: v["status"] for n, v in c["nodes"].items()}
                for c in verdict["checks"]}
    nodes = set(deployed_names(lab_spec))
    assert set(statuses["conformance"]) >= nodes
    assert set(statuses["conformance"].values()) == {"pass"}
    recs = read_dicts(run / "measurements.jsonl", strict=True)
    # each node's collector really ran on that node (through Slurm too)
    for n in nodes:
        out = json.loads((run / "raw" / "conformance" / f"{n}.out").read_text())
        assert out["hostname"] == n
    slurm_ok = {r["node"]: r["value"] for r in recs if r["metric"] == "slurm_node_ok"}
    assert set(slurm_ok) >= nodes and all(v == 1 for v in slurm_ok.values())
    present = {r["detail"].split(":")[0] for r in recs if r["metric"] == "tool_present"
               and r["value"] == 1}
    assert {"slurmd", "srun", "python3"} <= present
    assert _forge(["analyze", str(run)]) == 0


def deployed_names(spec: Path) -> list[str]:
    from provision.spec import load_site

    return [n.name for n in load_site(spec).nodes]

"""`forge check --via ssh|slurm` on the container lab, for real, and `forge analyze` of the run.

Uses the lab that `forge lab up` (plus `forge deploy` for Slurm) started, found through
provision.lab's state file; skipped with the reason when none is up.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provision import proc
from provision.cli.main import main
from provision.measurement import read_dicts

pytest.importorskip("provision.lab", reason="the container lab package is not present")
from provision.lab import config, keys, lab

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab_spec() -> Path:
    cfg = config.from_env()
    if not lab.podman_available():
        pytest.skip("podman cannot run here")
    info = lab.read_info(cfg)
    if info is None:
        pytest.skip(f"no lab is up ({cfg.state_file}); run: forge lab up && forge deploy")
    up = [s for s in lab.status(cfg) if s.state == "running"]
    if len(up) < cfg.nodes:
        pytest.skip(f"lab nodes not all running: {[s.name for s in up]}")
    ping = proc.run(keys.ssh_argv(cfg.ssh_key, cfg.known_hosts, cfg.ssh_port(1),
                                  "scontrol", "ping"), timeout=30)
    if "UP" not in ping.stdout:
        pytest.skip("Slurm is not deployed on the lab (scontrol ping: "
                    f"{(ping.stdout + ping.stderr).strip()[:80]})")
    return Path(str(info["spec"]))


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
    nodes = {"lab-n1", "lab-n2", "lab-n3"}
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

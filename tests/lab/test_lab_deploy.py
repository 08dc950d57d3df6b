"""The Slurm stack deployed by `forge deploy` on the container lab: converges, runs jobs,
and a second deploy changes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lab.labkit import LAB_PLAYBOOK, Deployed, Lab, podman_usable, wait_all_idle
from provision.errors import ExitCode
from provision.lab import lab as lab_mod
from provision.lab import podman
from provision.lab.config import LabConfig
from provision.lab.lab import LabError

pytestmark = pytest.mark.lab


def test_lab_nodes_answer_ssh_with_verified_host_keys(test_lab: Lab) -> None:
    lines = test_lab.cfg.known_hosts.read_text().splitlines()
    assert len(lines) == 3
    assert len({line.split()[2] for line in lines}) == 3, "each node has its own host key"
    base = ["ssh", "-i", str(test_lab.cfg.ssh_key), "-p", str(test_lab.cfg.ssh_port(2)),
            "-o", "BatchMode=yes", "-o", "ControlMaster=no", "-o", "StrictHostKeyChecking=yes"]
    good = subprocess.run([*base, "-o", f"UserKnownHostsFile={test_lab.cfg.known_hosts}",
                           "root@127.0.0.1", "hostname"], capture_output=True, text=True,
                          timeout=30)
    assert good.returncode == 0 and good.stdout.strip() == "forge-t-n2"
    wrong = test_lab.cfg.state_dir / "wrong_known_hosts"
    wrong.write_text(lines[0].replace("]:2321", "]:2322") + "\n")   # node 1's key for node 2
    bad = subprocess.run([*base, "-o", f"UserKnownHostsFile={wrong}", "root@127.0.0.1", "true"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "HOST IDENTIFICATION HAS CHANGED" in bad.stderr


def test_deploy_converges(deployed: Deployed) -> None:
    first = deployed.first
    assert first.exit_code == ExitCode.OK, [r.failure for r in first.results]
    assert sorted(first.targets) == deployed.lab.names
    assert {r.outcome for r in first.results} == {"changed"}   # a fresh lab needs changes
    record = json.loads((first.run_dir / "forge-run.json").read_text())
    assert record["schema_version"] == 1 and record["status"] == "successful"
    for kept in ("spec.yaml", "spec.json", "inventory/hosts.yml", "ansible-env.json",
                 "artifacts/ansible/stdout"):
        assert (first.run_dir / kept).exists(), kept
    assert list((first.run_dir / "artifacts/ansible/job_events").glob("*.json"))


def test_sinfo_shows_every_node_idle(deployed: Deployed) -> None:
    out = wait_all_idle(deployed.lab)
    states = dict(line.split() for line in out.splitlines() if line.strip())
    assert states == {name: "idle" for name in deployed.lab.names}, out


def test_srun_runs_across_all_nodes(deployed: Deployed) -> None:
    wait_all_idle(deployed.lab)
    out = deployed.lab.exec(1, "timeout", "60", "srun", "--immediate=30", "-N3", "hostname")
    assert sorted(out.split()) == deployed.lab.names


def test_fake_gpus_are_schedulable(deployed: Deployed) -> None:
    wait_all_idle(deployed.lab)
    gres = deployed.lab.exec(1, "sinfo", "--noheader", "--format=%G")
    assert gres.strip() == "gpu:fake:2(S:0)"       # Cores= in gres.conf reached slurmctld
    out = deployed.lab.exec(1, "timeout", "60", "srun", "--immediate=30", "-N3", "--gres=gpu:2",
                            "sh", "-c", "echo $CUDA_VISIBLE_DEVICES")
    assert out.split() == ["0,1"] * 3


def test_second_deploy_changes_nothing(deployed: Deployed) -> None:
    """Idempotence through the CLI: exit 0 and zero changed tasks on every host."""
    lab_ = deployed.lab
    proc = subprocess.run(
        [sys.executable, "-m", "provision", "deploy", str(lab_.spec), "--runs-dir", str(lab_.runs),
         "--playbook", str(LAB_PLAYBOOK), "--json"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(proc.stdout)
    assert record["stats"]["changed"] == {}, record["stats"]["changed"]
    assert {r["outcome"] for r in record["results"]} == {"ok"}


def test_lab_up_refuses_a_network_without_dns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Slurm and the roles address nodes by name: a lab whose nodes cannot resolve each
    other must fail at `lab up`, naming the packages that fix it, not later in Slurm."""
    if not podman_usable():
        pytest.skip("podman with runc cannot run here")
    create = podman.network_create
    monkeypatch.setattr(podman, "network_create",
                        lambda cfg, **kw: [*create(cfg, **kw)[:-1], "--disable-dns", cfg.network])
    cfg = LabConfig(state_dir=tmp_path, prefix="forge-dns-n", nodes=2, ssh_port_base=2395,
                    subnet="10.89.68.0/24", network="forge-dns-net")
    try:
        with pytest.raises(LabError, match="cannot resolve forge-dns-n1") as err:
            lab_mod.up(cfg)
        assert "aardvark-dns" in (err.value.hint or "")
    finally:
        lab_mod.down(cfg)

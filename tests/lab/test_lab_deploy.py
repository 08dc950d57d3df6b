"""The Slurm stack deployed by `forge deploy` on the container lab: converges, runs jobs,
and a second deploy changes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lab.labkit import LAB_PLAYBOOK, Deployed, Lab, wait_all_idle
from provision.errors import ExitCode
from provision.lab import lab as lab_mod
from provision.lab import podman
from provision.lab.config import LabConfig
from provision.lab.lab import LabError

pytestmark = pytest.mark.lab
SLURM_PLAYBOOK = LAB_PLAYBOOK.parent / "slurm.yml"


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


def test_lab_up_refuses_a_network_without_dns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              test_labs_claimed: None) -> None:
    """Slurm and the roles address nodes by name: a lab whose nodes cannot resolve each
    other must fail at `lab up`, naming the packages that fix it, not later in Slurm."""
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


def _variant(lab_: Lab, tmp_path: Path, name: str, change: dict) -> Path:
    """The lab's spec with ``change`` (top-level keys merged one level deep)."""
    import yaml

    doc = yaml.safe_load(lab_.spec.read_text())
    for key, value in change.items():
        doc[key] = {**doc.get(key, {}), **value} if isinstance(value, dict) else value
    for key in ("ssh_key", "known_hosts"):                      # relative to the spec's folder
        doc["access"][key] = str((lab_.spec.parent / doc["access"][key]).resolve())
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(yaml.safe_dump(doc))
    return spec


def _deploy_slurm(lab_: Lab, tmp_path: Path, spec: Path | None = None,
                  ) -> subprocess.CompletedProcess[str]:
    """The Slurm playbook on the lab (its own spec unless ``spec``)."""
    spec = spec or lab_.spec
    return subprocess.run(
        [sys.executable, "-m", "provision", "deploy", str(spec), "--runs-dir",
         str(tmp_path / "runs"), "--playbook", str(SLURM_PLAYBOOK), "--json"],
        capture_output=True, text=True, timeout=600)


def _all_idle(lab_: Lab) -> bool:
    out = wait_all_idle(lab_)
    states = dict(line.split() for line in out.splitlines() if line.strip())
    return set(states.values()) == {"idle"} and sorted(states) == sorted(lab_.names)


def test_gres_mismatch_fails_before_slurmd_restarts(deployed: Deployed, tmp_path: Path) -> None:
    """A profile promising a GPU the node lacks: the role's `slurmd -G` comparison
    stops the deploy, naming both sides; the running slurmd keeps its old config."""
    lab_ = deployed.lab
    try:
        proc = _deploy_slurm(lab_, tmp_path, _variant(
            lab_, tmp_path, "three-gpus", {"profiles": {"lab-container": {"fake_gpus": 3}}}))
        assert proc.returncode == ExitCode.DEPLOY_FAILED, proc.stderr[-2000:]
        failures = [r["failure"] for r in json.loads(proc.stdout)["results"] if r.get("failure")]
        assert failures and all(f["task"] == "Services | slurmd registers the GPUs slurm.conf "
                                "promises" for f in failures), failures
        assert "slurm.conf promises gpu:fake:3, slurmd -G registers 0" in failures[0]["message"]
        assert "/dev/lab-fake-gpu2" in failures[0]["message"]
        assert _all_idle(lab_)                       # the old slurmd still runs
    finally:
        restore = _deploy_slurm(lab_, tmp_path)
        assert restore.returncode == 0, restore.stderr[-2000:]


def test_health_check_program_is_written_and_nodes_register(deployed: Deployed,
                                                            tmp_path: Path) -> None:
    """stack.slurm.health_check: the role writes HealthCheckProgram into slurm.conf; with
    a non-fatal finding on every node (expectations of a 100 TiB profile) forge-health
    prints it and exits 0, and every node registers when slurmd restarts."""
    lab_ = deployed.lab
    stage = tmp_path / "stage"
    big = _variant(lab_, tmp_path, "big-memory", {"profiles": {"lab-container": {
        "memory_gib": 100000}}})
    done = subprocess.run([sys.executable, "-m", "provision", "sweep", "install", str(big),
                           "--root", str(stage)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    package = Path(__file__).resolve().parents[2] / "provision"
    for name in lab_.names:
        lab_node = ["podman", "exec", name]
        subprocess.run([*lab_node, "mkdir", "-p", "/usr/local/lib/forge", "/etc/forge"], check=True)
        for src, dest in ((package, "/usr/local/lib/forge/"),
                          (stage / "etc/forge/sweep.json", "/etc/forge/sweep.json"),
                          (stage / "usr/local/sbin/forge-health", "/usr/local/sbin/forge-health")):
            subprocess.run(["podman", "cp", str(src), f"{name}:{dest}"], check=True)
        subprocess.run([*lab_node, "chmod", "755", "/usr/local/sbin/forge-health"], check=True)
    try:
        with_check = _variant(lab_, tmp_path, "health-check", {"stack": {
            "slurm": {"health_check": True}}})
        proc = _deploy_slurm(lab_, tmp_path, with_check)
        assert proc.returncode == 0, proc.stderr[-3000:]
        conf = lab_.exec(2, "cat", "/etc/slurm/slurm.conf")
        assert "HealthCheckProgram=/usr/local/sbin/forge-health" in conf.splitlines()
        assert "HealthCheckInterval=300" in conf.splitlines()
        assert _all_idle(lab_)
        log = lab_.exec(2, "sh", "-c", "/usr/local/sbin/forge-health; echo rc=$?")
        assert log.startswith("ERROR: ") and "host_memory" in log, log
        assert log.strip().endswith("rc=0"), log
    finally:
        restore = _deploy_slurm(lab_, tmp_path)
        assert restore.returncode == 0, restore.stderr[-2000:]

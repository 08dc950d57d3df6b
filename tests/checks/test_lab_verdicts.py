"""Verdicts on a lab of its own with real Slurm 22.05 and placeholder GPUs (GRES).

Containers ``f13-n1..3`` (SSH on 127.0.0.1:2451-2453), Slurm configured here
with two placeholder GPUs per node (``/dev/lab-fake-gpu*``, bound to /dev/null).
What is real: srun and its allocation, sinfo/scontrol, reservations, SSH, the
sweep's probe script, the history store, ``forge requalify``. What is replayed:
a real Xid 63 line (stas00/ml-engineering, ../shared/fixtures/real) through the
Xid probe's documented test hook. No GPU code runs (there is none here).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from lab import slurmkit
from lab.slurmkit import cp, must, slurm_conf, start_slurm

from provision.lab import lab as labmod
from provision.lab.config import LabConfig

pytestmark = pytest.mark.lab

REAL = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "real"
FATAL = REAL / "dmesg-xid/stas-xid63-row-remapper-line.txt"
NODES = ("f13-n1", "f13-n2", "f13-n3")
CTL = NODES[0]
SLURM_CONF = slurm_conf("f13", CTL, "f13-n[1-3]", "CPUs=2 RealMemory=500 Gres=gpu:2",
                        extra=("CryptoType=crypto/munge", "GresTypes=gpu"))
GRES_CONF = "Name=gpu File=/dev/lab-fake-gpu[0-1]\n"
#: what the step prints about the resources Slurm gave it
PROBE = ('echo "gpus=${CUDA_VISIBLE_DEVICES:-none} job_cpus=${SLURM_JOB_CPUS_PER_NODE:-?} '
         'step_cpus=${SLURM_CPUS_ON_NODE:-?} per_task=${SLURM_CPUS_PER_TASK:-1} '
         'nproc=$(nproc)"')


def sinfo() -> dict[str, tuple[str, str]]:
    return slurmkit.sinfo(CTL)


def wait_for(pred, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    slurmkit.wait_for(pred, CTL, timeout, what)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabConfig]:
    if shutil.which("podman") is None or not labmod.podman_available():
        pytest.skip("podman cannot run here")
    if not FATAL.exists():
        pytest.skip("real fixtures not present")
    state = tmp_path_factory.mktemp("f13lab")
    cfg = LabConfig(state_dir=state, prefix="f13-n", nodes=3, ssh_port_base=2450,
                    subnet="10.89.130.0/24", network="f13-net", fake_gpus=2,
                    cluster_name="f13")
    labmod.up(cfg)
    try:
        start_slurm(cfg, NODES, {"/etc/slurm/slurm.conf": SLURM_CONF,
                                 "/etc/slurm/gres.conf": GRES_CONF})
        yield cfg
    finally:
        labmod.down(cfg)


def forge(*args: str) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    from provision.cli.main import cli

    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    out = res.stdout.strip()
    return res.exit_code, json.loads(out) if out.startswith("{") else {}, res.output


def ssh(cfg: LabConfig):  # type: ignore[no-untyped-def]
    from provision.cli.check import _ssh
    from provision.spec import load_site

    site = load_site(cfg.spec_path)
    return site, _ssh(site, list(site.nodes))


def test_a_check_step_gets_the_node_its_gpus_and_cpus(lab: LabConfig) -> None:
    from provision.remote.base import Command
    from provision.remote.slurm import SlurmLauncher

    site, launcher = ssh(lab)
    try:
        gpus = {n.name: n.profile.fake_gpus for n in site.nodes}
        slurm = SlurmLauncher(launcher, "f13-n1", gpus=gpus)
        res = slurm.run({"f13-n2": Command(("sh", "-c", PROBE), 60)})["f13-n2"]
        assert res.returncode == 0, res.stderr
        seen = dict(kv.split("=", 1) for kv in res.stdout.split())
        assert seen["gpus"] == "0,1"                 # both placeholder GPUs
        assert seen["job_cpus"] == seen["step_cpus"] == seen["per_task"] == "2"
        assert int(seen["nproc"]) > 1
        # the step as forge built it before: one CPU and no GPU (the test can fail)
        old = launcher.run_one("f13-n1", Command(
            ("srun", "-N1", "--nodelist=f13-n2", "--ntasks-per-node=1", "sh", "-c", PROBE), 60))
        before = dict(kv.split("=", 1) for kv in old.stdout.split())
        assert before["gpus"] == "none" and before["step_cpus"] == before["per_task"] == "1"
    finally:
        launcher.close()


def test_ownership_guard_on_real_slurm_states(lab: LabConfig) -> None:
    from provision.actions.slurm import SlurmScheduler, remote_runner
    from provision.checks import ownership, registry
    from provision.errors import InputError

    _, launcher = ssh(lab)
    try:
        runner = remote_runner(launcher, "f13-n1")
        must("f13-n1", "scontrol update nodename=f13-n2 state=drain reason=acceptance")
        must("f13-n1", "scontrol create reservation reservationname=f13acc nodes=f13-n3 "
             "users=root starttime=now duration=10 flags=maint,ignore_jobs")
        states = SlurmScheduler(runner).states(list(NODES))
        held = ownership.parse_reservation(
            runner(["scontrol", "show", "reservation", "f13acc", "-o"], 30).stdout)
        assert held == ["f13-n3"]
        sdc = [registry.get("sdc")]
        ownership.guard(sdc, ["f13-n2", "f13-n3"], states, held)   # drained, reserved
        with pytest.raises(InputError, match="f13-n1: idle"):
            ownership.guard(sdc, list(NODES), states, held)
    finally:
        must("f13-n1", "scontrol delete reservation=f13acc; "
             "scontrol update nodename=f13-n2 state=resume")
        launcher.close()


def test_sticky_drain_until_requalify_passes(lab: LabConfig, tmp_path: Path) -> None:
    db = str(tmp_path / "history.db")
    sweep = ("sweep", str(lab.spec_path), "--json", "--db", db, "--drain", "--resume-after", "1")
    cp(FATAL, "f13-n2", "/var/tmp/recorded-kernel-log.txt")
    must("f13-n2", "rm -f /var/lib/forge/xid-ack; echo FORGE_SWEEP_XID_FILE="
         "/var/tmp/recorded-kernel-log.txt > /etc/default/forge-health")
    rc, doc, _ = forge(*sweep)
    assert {a["node"]: a["action"] for a in doc["actions"]}["f13-n2"] == "drain", doc
    wait_for(lambda: sinfo()["f13-n2"][0] in ("drained", "draining"), 30, "drain")
    # the log rolls over (or the node reboots): clean sweeps lift nothing
    must("f13-n2", "rm -f /etc/default/forge-health")
    for _ in range(2):
        rc, doc, _ = forge(*sweep)
        act = {a["node"]: a for a in doc["actions"]}["f13-n2"]
        assert act["action"] == "none" and "forge requalify f13-n2" in act["why"], act
    assert sinfo()["f13-n2"][0] == "drained"
    # the same boot's log still holds the Xid: re-qualification accounts for it
    must("f13-n2", "echo FORGE_SWEEP_XID_FILE=/var/tmp/recorded-kernel-log.txt "
         "> /etc/default/forge-health")
    rc, doc, out = forge("requalify", str(lab.spec_path), "f13-n2", "--checks", "conformance",
                         "--db", db, "-o", str(tmp_path / "rq"), "--json")
    assert rc == 0, out
    assert doc["action"]["action"] == "resume" and "sticky:xid" in doc["action"]["why"]
    assert doc["xid_mark"].endswith("1 hardware Xid(s) accounted for")
    assert must("f13-n2", "cat /var/lib/forge/xid-ack").split()[1] == "1"
    wait_for(lambda: sinfo()["f13-n2"][0] == "idle", 30, "resumed")
    rc, doc, _ = forge(*sweep)           # the accounted-for Xid does not drain again
    n2 = {n["node"]: n for n in doc["nodes"]}["f13-n2"]
    assert n2["status"] == "healthy", n2
    must("f13-n2", "rm -f /etc/default/forge-health /var/lib/forge/xid-ack")

"""Sweeps against the container lab's real Slurm (24.11, munge) over real SSH.

A lab of its own (containers ``fsw-n1..3``, SSH on 127.0.0.1:2341-2343) so it
never disturbs the user's lab. Failures are simulated with *recordings of
real failures* from ../shared/fixtures/real/, copied onto a node and read
by the Xid probe through its documented test hook (``FORGE_SWEEP_XID_FILE`` in
/etc/default/forge-health); everything else is forge's real code path:
SSH fan-out, probe script, verdict, history store, policy, ``scontrol``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from lab import slurmkit
from lab.slurmkit import cp, must, sh, slurm_conf, start_slurm

from provision import proc
from provision.lab import lab as labmod
from provision.lab.config import LabConfig

pytestmark = pytest.mark.lab

REAL = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "real"
ROOT = Path(__file__).resolve().parents[2]
# recording: stas00/ml-engineering, syslog line of a real Xid 63 (row remapping) on an A100
FATAL_RECORDING = REAL / "dmesg-xid/stas-xid63-row-remapper-line.txt"
# recording: leptonai/gpud, a real boot log with 629 Xid 13 + 7 Xid 43 (application faults)
APP_RECORDING = REAL / "dmesg-xid/gpud-dmesg-decode-iso-xid13-xid43-long.txt"
NODES = ("fsw-n1", "fsw-n2", "fsw-n3")

CTL = NODES[0]


def fsw_slurm_conf(health: str = "") -> str:
    """The cluster's slurm.conf, with ``health`` (HealthCheckProgram lines) when given."""
    extra = ["SlurmctldTimeout=30", "SlurmdTimeout=30", *([health] if health else [])]
    return slurm_conf("fsw", CTL, "fsw-n[1-3]", "CPUs=2 RealMemory=1000", extra)


def _podman_ok() -> bool:
    return shutil.which("podman") is not None and labmod.podman_available()


def write_slurm_conf(tmp: Path, health: str = "") -> None:
    conf = tmp / "slurm.conf"
    conf.write_text(fsw_slurm_conf(health))
    for n in NODES:
        cp(conf, n, "/etc/slurm/slurm.conf")


def sinfo() -> dict[str, tuple[str, str]]:
    return slurmkit.sinfo(CTL)


def show_node(node: str) -> str:
    return must("fsw-n1", f"scontrol show node -o {node}")


def wait_for(pred, timeout: float = 60, what: str = "") -> None:  # type: ignore[no-untyped-def]
    slurmkit.wait_for(pred, CTL, timeout, what)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabConfig]:
    if not _podman_ok():
        pytest.skip("podman cannot run here")
    if not REAL.is_dir():
        pytest.skip("real fixtures not present")
    state = tmp_path_factory.mktemp("fswlab")
    cfg = LabConfig(state_dir=state, prefix="fsw-n", nodes=3, ssh_port_base=2340,
                    subnet="10.94.0.0/24", network="fsw-net", fake_gpus=0, cluster_name="fsw")
    labmod.up(cfg)
    try:
        start_slurm(cfg, NODES, {"/etc/slurm/slurm.conf": fsw_slurm_conf()})
        yield cfg
    finally:
        labmod.down(cfg)


def inject(node: str, recording: Path | None) -> None:
    """Point the node's Xid probe at a recording (the documented test hook), or back to dmesg."""
    if recording is None:
        must(node, "rm -f /etc/default/forge-health /var/tmp/recorded-kernel-log.txt")
        return
    cp(recording, node, "/var/tmp/recorded-kernel-log.txt")
    must(node, "echo FORGE_SWEEP_XID_FILE=/var/tmp/recorded-kernel-log.txt "
         "> /etc/default/forge-health")


def forge(*args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    from provision.cli.main import cli

    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    doc = json.loads(res.stdout) if res.stdout.strip().startswith("{") else {}
    return res.exit_code, doc


def sweep_json(cfg: LabConfig, db: Path, *extra: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    return forge("sweep", str(cfg.spec_path), "--json", "--db", str(db), *extra)


def test_drain_with_provenance_resume_and_hands_off(lab: LabConfig, tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    drain = ("--drain", "--fail-after", "2", "--resume-after", "2")
    must("fsw-n1", "scontrol update nodename=fsw-n3 state=drain reason='hand: fan swap 4711'")
    inject("fsw-n1", APP_RECORDING)
    inject("fsw-n2", FATAL_RECORDING)
    inject("fsw-n3", FATAL_RECORDING)

    # dry run: shows the fatal drain of fsw-n2, changes nothing
    rc, doc = sweep_json(lab, db, *drain, "--dry-run")
    assert rc == 1
    planned = {a["node"]: a for a in doc["actions"]}
    assert planned["fsw-n2"]["action"] == "drain" and planned["fsw-n2"]["outcome"] == "dry-run"
    assert sinfo()["fsw-n2"][0] == "idle"

    # sweep 1: the fatal Xid 63 drains fsw-n2 at once; fsw-n1's application Xids never do
    rc, doc = sweep_json(lab, db, *drain)
    run1 = doc["run_id"]
    acts = {a["node"]: a for a in doc["actions"]}
    assert acts["fsw-n2"]["outcome"] == "done", acts
    assert acts["fsw-n1"]["action"] == "none" and acts["fsw-n1"]["why"] == "healthy"
    assert "left alone" in acts["fsw-n3"]["why"]
    state, reason = sinfo()["fsw-n2"]
    assert state in ("drained", "draining") and reason.startswith(f"forge:xid:{run1}: ")
    assert f"Reason=forge:xid:{run1}: xid_fatal_events=1" in show_node("fsw-n2")
    assert sinfo()["fsw-n1"][0] == "idle"

    # sweep 2: still no drain for the application faults
    rc, doc = sweep_json(lab, db, *drain)
    assert sinfo()["fsw-n1"][0] == "idle"

    for n in NODES:
        inject(n, None)
    # sweeps 3 and 4: clean (the log rolled over), but a hardware drain is sticky
    for _ in range(2):
        rc, doc = sweep_json(lab, db, *drain)
        acts = {a["node"]: a for a in doc["actions"]}
        assert rc == 0 and acts["fsw-n2"]["action"] == "none"
        assert "forge requalify fsw-n2" in acts["fsw-n2"]["why"]
        assert sinfo()["fsw-n2"][0] in ("drained", "draining")
    # an operator resumes it by hand: forge takes that as clearing the mark
    must("fsw-n1", "scontrol update nodename=fsw-n2 state=resume")
    rc, doc = sweep_json(lab, db, *drain)
    acts = {a["node"]: a for a in doc["actions"]}
    assert "operator cleared" in acts["fsw-n2"]["why"]
    wait_for(lambda: sinfo()["fsw-n1"][0] == "idle" and sinfo()["fsw-n2"][0] == "idle", 30,
             "nodes idle")
    # the hand-set drain is untouched through all of it
    assert sinfo()["fsw-n3"] == ("drained", "hand: fan swap 4711")
    assert "Reason=hand: fan swap 4711" in show_node("fsw-n3")
    must("fsw-n1", "scontrol update nodename=fsw-n3 state=resume")

    rc, doc = forge("history", "fsw-n[1-3]", "--metric", "xid_fatal_events", "--db", str(db),
                    "--json")
    values = [s["value"] for s in doc["samples"] if s["node"] == "fsw-n2"]
    assert values == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]  # dry run, 2 failing, 3 clean


def test_health_check_program_drains_and_resumes(lab: LabConfig, tmp_path: Path) -> None:
    """Slurm itself runs /usr/local/sbin/forge-health (standard library only on the node)."""
    stage = tmp_path / "root"
    rc, _ = forge("sweep", "install", str(lab.spec_path), "--root", str(stage), "--json")
    assert rc == 0
    pkg = tmp_path / "pkg"
    shutil.copytree(ROOT / "provision", pkg / "provision",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for n in NODES:
        must(n, "mkdir -p /usr/local/lib/forge /etc/forge /var/lib/forge")
        cp(pkg / "provision", n, "/usr/local/lib/forge/")
        cp(stage / "etc/forge/sweep.json", n, "/etc/forge/sweep.json")
        cp(stage / "usr/local/sbin/forge-health", n, "/usr/local/sbin/forge-health")
        must(n, "chmod 755 /usr/local/sbin/forge-health")
    # clean node, run by hand: quiet, one line, exit 0
    out = must("fsw-n2", "/usr/local/sbin/forge-health")
    assert out.strip() == "OK"
    write_slurm_conf(tmp_path, "HealthCheckProgram=/usr/local/sbin/forge-health\n"
                     "HealthCheckInterval=3\nHealthCheckNodeState=ANY")
    must("fsw-n1", "systemctl restart slurmctld")
    for n in NODES:
        must(n, "systemctl restart slurmd")
    wait_for(lambda: len(sinfo()) == 3 and all(s[0] == "idle" for s in sinfo().values()),
             60, "idle after reconfigure")
    inject("fsw-n2", FATAL_RECORDING)
    must("fsw-n2", "echo 'FORGE_HEALTH_ARGS=\"--drain --resume-after 1\"' "
         ">> /etc/default/forge-health")
    wait_for(lambda: sinfo()["fsw-n2"][1].startswith("forge:xid:health-"), 60,
             "HealthCheckProgram drain")
    assert "xid_fatal_events=1" in sinfo()["fsw-n2"][1]
    done = sh("fsw-n2", "/usr/local/sbin/forge-health")
    assert done.returncode == 1 and done.stdout.startswith("ERROR: fsw-n2: FATAL xid/")
    must("fsw-n2", "echo 'FORGE_HEALTH_ARGS=\"--drain --resume-after 1\"' "
         "> /etc/default/forge-health")
    # the kernel log is clean again, but a hardware drain is sticky: no resume by itself
    time.sleep(10)
    assert sinfo()["fsw-n2"][1].startswith("forge:xid:health-")
    must("fsw-n1", "scontrol update nodename=fsw-n2 state=resume")   # the operator clears it
    wait_for(lambda: sinfo()["fsw-n2"][0] == "idle", 60, "operator resume")
    time.sleep(5)                                     # and the next health checks keep it up
    assert sinfo()["fsw-n2"][0] == "idle"
    write_slurm_conf(tmp_path)
    must("fsw-n2", "rm -f /etc/default/forge-health")
    must("fsw-n1", "scontrol reconfigure")


def test_node_stopped_mid_run_is_unreachable_and_nothing_is_lost(lab: LabConfig,
                                                                 tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    # fsw-n3's Xid probe reads a FIFO nobody writes: the sweep is mid-run on it when we stop it
    must("fsw-n3", "rm -f /var/tmp/hold && mkfifo /var/tmp/hold && "
         "echo FORGE_SWEEP_XID_FILE=/var/tmp/hold > /etc/default/forge-health")
    result: dict[str, object] = {}

    def run() -> None:
        result["rc"], result["doc"] = sweep_json(lab, db)

    t = threading.Thread(target=run)
    start = time.monotonic()
    t.start()
    time.sleep(3)
    assert proc.run(["podman", "stop", "--time", "1", "fsw-n3"], timeout=60).ok
    t.join(120)
    elapsed = time.monotonic() - start
    try:
        doc = result["doc"]
        assert isinstance(doc, dict)
        nodes = {n["node"]: n for n in doc["nodes"]}
        assert result["rc"] == 4
        assert nodes["fsw-n1"]["status"] == "healthy" and nodes["fsw-n2"]["status"] == "healthy"
        n3 = nodes["fsw-n3"]
        assert n3["status"] == "unreachable", n3
        assert "connection lost mid-run" in n3["reason"], n3["reason"]
        kept = {(r["metric"], r["value"]) for r in n3["records"] if r["check"] == "host"}
        assert {m for m, _ in kept} == {"cpu_count", "host_memory", "host_uptime",
                                          "probe_ok"}
        assert ("probe_ok", 1.0) in kept                   # finished before the stop: kept
        xid = [r for r in n3["records"] if r["check"] == "xid"]
        assert [(r["metric"], r["value"]) for r in xid] == [("probe_ok", 0.0)]
        assert elapsed < 60
        from provision.history.store import HistoryStore

        with HistoryStore(db) as store:
            rows = store.samples(nodes=["fsw-n3"])
            assert {s.metric for s in rows} >= {"cpu_count", "host_memory", "node_reachable"}
            assert [s.value for s in rows if s.metric == "node_reachable"] == [0.0]
            assert len(store.samples(nodes=["fsw-n1", "fsw-n2"])) > 0
    finally:
        proc.run(["podman", "start", "fsw-n3"], timeout=60)


def test_ansible_role_installs_a_non_overlapping_timer(lab: LabConfig, tmp_path: Path) -> None:
    """playbooks/roles/health_sweep converged twice on a lab node (second run changes nothing)."""
    inv = tmp_path / "inventory.ini"
    inv.write_text(f"[sweepers]\nfsw-n1 ansible_host=127.0.0.1 ansible_port={lab.ssh_port(1)} "
                   f"ansible_user=root ansible_ssh_private_key_file={lab.ssh_key} "
                   "ansible_python_interpreter=/usr/bin/python3\n")
    play = tmp_path / "play.yml"
    # forge itself is not installed on the node: /bin/true stands in for the executable so
    # the unit, the lock and the exit-code handling run for real
    play.write_text("- name: Health sweeps\n  hosts: sweepers\n  roles:\n    - role: health_sweep\n"
                    "      vars:\n        health_sweep_overrides: {interval: 5min, forge: /bin/true}\n")
    env = {"ANSIBLE_ROLES_PATH": str(ROOT / "playbooks/roles"),
           "ANSIBLE_SSH_ARGS": f"-o UserKnownHostsFile={lab.known_hosts} -o ControlMaster=no",
           "ANSIBLE_NOCOLOR": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "HOME": str(tmp_path)}
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inv), str(play)]
    first = proc.run(argv, timeout=300, env=env)
    assert first.ok, first.stdout[-2000:]
    second = proc.run(argv, timeout=300, env=env)
    assert second.ok and "changed=0" in second.stdout, second.stdout[-2000:]
    assert must("fsw-n1", "systemctl is-enabled forge-sweep.timer").strip() == "enabled"
    must("fsw-n1", "systemctl start forge-sweep.service")           # runs, exit 0
    # while another run holds the lock the next one exits at once (75), not overlapping
    out = must("fsw-n1", "flock /run/lock/forge-sweep.lock sh -c "
               "'systemctl start forge-sweep.service; systemctl show -p ExecMainStatus "
               "forge-sweep.service'")
    assert out.strip() == "ExecMainStatus=75"

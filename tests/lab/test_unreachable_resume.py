"""A node lost in the middle of a deploy is reported unreachable, the others finish,
and `--resume` completes it once it is back. Runs after the state tests (file order)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping
from typing import Any

import pytest

from lab.labkit import LAB_PLAYBOOK, Deployed, wait_all_idle
from provision.deploy.driver import DeployOptions, deploy
from provision.deploy.summary import summary_lines
from provision.errors import ExitCode
from provision.lab import keys

pytestmark = pytest.mark.lab

STOP_AT_PLAY = "Slurm workload manager"


def _wait_ssh(deployed: Deployed, index: int, timeout: float = 60) -> None:
    cfg = deployed.lab.cfg
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        argv = keys.ssh_argv(cfg.ssh_key, cfg.known_hosts, cfg.ssh_port(index), "true")
        if subprocess.run(argv, capture_output=True, timeout=15).returncode == 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"node {index} did not come back")


def test_lost_node_is_reported_and_resume_completes_it(deployed: Deployed) -> None:
    lab_ = deployed.lab
    victim = lab_.names[2]
    stopped: list[str] = []

    def stop_victim(event: Mapping[str, Any]) -> None:
        data = event.get("event_data") or {}
        if event.get("event") == "playbook_on_play_start" and data.get("name") == STOP_AT_PLAY \
                and not stopped:
            subprocess.run(["podman", "stop", "--time", "2", victim], check=True,
                           capture_output=True, timeout=60)
            stopped.append(victim)

    try:
        broken = deploy(DeployOptions(spec=lab_.spec, runs_root=lab_.runs, playbook=LAB_PLAYBOOK),
                        on_event=stop_victim)
    finally:
        subprocess.run(["podman", "start", victim], capture_output=True, timeout=60)
    assert stopped == [victim]
    outcomes = {r.host: r.outcome for r in broken.results}
    assert outcomes == {lab_.names[0]: "ok", lab_.names[1]: "ok", victim: "unreachable"}
    assert broken.exit_code == ExitCode.HOSTS_UNREACHABLE
    failure = next(r.failure for r in broken.results if r.host == victim)
    assert failure is not None and failure.unreachable and failure.play == STOP_AT_PLAY
    text = "\n".join(summary_lines(broken, spec="lab.yaml"))
    assert f"{victim}: unreachable at task" in text
    log = broken.run_dir / "hosts" / f"{victim}.log"
    assert log.exists() and "UNREACHABLE" in log.read_text()

    _wait_ssh(deployed, 3)
    resumed = deploy(DeployOptions(spec=lab_.spec, runs_root=lab_.runs, resume=True,
                                    playbook=LAB_PLAYBOOK))
    assert resumed.resumed_from == broken.run_dir
    assert resumed.targets == (victim,)
    assert resumed.exit_code == ExitCode.OK, [r.failure for r in resumed.results]
    assert wait_all_idle(lab_).count("idle") == 3

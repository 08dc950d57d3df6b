"""A rolling reboot through both of forge's connection paths (Mitogen, Ansible's ssh).

The driver and common roles reboot nodes with ``ansible.builtin.reboot`` and a
throttle; Mitogen keeps a Python interpreter on each node, so the reboot must
drop it and reconnect. The lab's power button is a watcher that starts a node's
container again once its systemd has shut it down, as a BMC would power it on.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from provision.deploy.driver import DeployOptions, deploy
from provision.deploy.settings import Profile
from provision.errors import ExitCode
from provision.lab import lab
from provision.lab.config import LabConfig

pytestmark = pytest.mark.lab

PLAYBOOK = Path(__file__).parent / "playbooks" / "rolling_reboot.yml"


@dataclass
class PowerButton:
    """Starts lab containers that stopped, and counts the starts per node."""

    names: list[str]
    starts: dict[str, int] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def _states(self) -> dict[str, str]:
        out = subprocess.run(["podman", "ps", "-a", "--format", "json"], capture_output=True,
                             text=True, timeout=30, check=True).stdout
        return {c["Names"][0]: c["State"] for c in json.loads(out or "[]")
                if c["Names"][0] in self.names}

    def run(self) -> None:
        while not self.stop.is_set():
            for name, state in self._states().items():
                if state in ("exited", "stopped"):
                    subprocess.run(["podman", "start", name], capture_output=True, timeout=60)
                    self.starts[name] = self.starts.get(name, 0) + 1
            self.stop.wait(0.3)


@pytest.fixture(scope="module")
def reboot_lab(tmp_path_factory: pytest.TempPathFactory,
               test_labs_claimed: None) -> Iterator[tuple[LabConfig, Path]]:
    work = tmp_path_factory.mktemp("reboot-lab")
    cfg = LabConfig(state_dir=work / "state", prefix="forge-r-n", nodes=2, ssh_port_base=2370,
                    subnet="10.89.64.0/24", network="forge-r-net", fake_gpus=0,
                    cluster_name="reboot")
    info = lab.up(cfg)
    try:
        yield cfg, Path(info.spec)
    finally:
        lab.down(cfg)


@pytest.mark.parametrize("profile", ["forge", "forge-ssh"])
def test_rolling_reboot_reconnects_one_node_at_a_time(reboot_lab: tuple[LabConfig, Path],
                                                       tmp_path: Path, profile: Profile) -> None:
    cfg, spec = reboot_lab
    button = PowerButton(cfg.node_names)
    watcher = threading.Thread(target=button.run, daemon=True)
    watcher.start()
    try:
        result = deploy(DeployOptions(spec=spec, playbook=PLAYBOOK, runs_root=tmp_path,
                                      profile=profile))
    finally:
        button.stop.set()
        watcher.join(timeout=60)
    assert result.exit_code == ExitCode.OK, result.run_dir
    assert {r.host: r.outcome for r in result.results} == dict.fromkeys(cfg.node_names,
                                                                         "changed")
    assert button.starts == dict.fromkeys(cfg.node_names, 1)
    went_down = {n: _state_ns(n, "FinishedAt") for n in cfg.node_names}
    came_up = {n: _state_ns(n, "StartedAt") for n in cfg.node_names}
    first, second = sorted(cfg.node_names, key=went_down.__getitem__)
    assert went_down[second] > came_up[first], "two nodes were down at once"


def _state_ns(name: str, when: str) -> int:
    """podman's own record of when the container last stopped or started, in ns."""
    out = subprocess.run(["podman", "inspect", "--format", f"{{{{.State.{when}.UnixNano}}}}",
                          name], capture_output=True, text=True, timeout=30, check=True)
    return int(out.stdout.strip())

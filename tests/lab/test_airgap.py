"""The air-gapped path: nodes with no route beyond the lab subnet install the whole Slurm
stack from a signed local mirror served inside the lab, with no other apt source enabled."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from lab.labkit import LAB_PLAYBOOK, Lab, wait_all_idle
from provision.deploy.driver import DeployOptions, deploy
from provision.errors import ExitCode
from provision.lab import image, lab, mirror
from provision.lab.config import BASE_IMAGE, REPO_ROOT, LabConfig

pytestmark = pytest.mark.lab

ROLES = REPO_ROOT / "playbooks" / "roles"


def role_packages() -> list[str]:
    """What the roles install on Debian lab nodes: read from the roles, the one source of truth."""
    common = yaml.safe_load((ROLES / "common/vars/Debian.yml").read_text())
    slurm = yaml.safe_load((ROLES / "slurm/vars/Debian.yml").read_text())
    tools = yaml.safe_load((ROLES / "acceptance_tools/vars/Debian.yml").read_text())
    pkgs = common["common_packages"] + common["common_time_packages"]["chrony"]
    pkgs += tools["acceptance_tools_perftest_packages"]
    for part in ("controller", "compute", "login"):
        pkgs += slurm["slurm_packages"][part]
    return sorted(set(pkgs))


@pytest.fixture(scope="module")
def airgapped_lab(tmp_path_factory: pytest.TempPathFactory,
                  test_labs_claimed: None) -> Iterator[tuple[Lab, Path]]:
    for tool in ("gpg", "dpkg-scanpackages"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            pytest.skip(f"{tool} is not installed (apt-get install gpg dpkg-dev)")
    work = tmp_path_factory.mktemp("airgap")
    image.build_image(BASE_IMAGE)
    debs = mirror.collect(role_packages(), work / "debs")
    keyring = mirror.build(debs, work / "repo", work / "gnupg")
    cfg = LabConfig(state_dir=work / "state", prefix="forge-a-n", nodes=2, ssh_port_base=2340,
                    subnet="10.89.62.0/24", network="forge-a-net", image=BASE_IMAGE)
    info = lab.up(cfg, mirror_url=mirror.mirror_url(cfg), airgapped=True)
    try:
        mirror.serve(cfg, work / "repo")
        yield Lab(cfg, info, Path(info.spec), work / "runs"), keyring
    finally:
        mirror.stop(cfg)
        lab.down(cfg)


def _probe(lab_: Lab, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", "exec", f"{lab_.cfg.prefix}1", "python3", "-c",
         f"import urllib.request; urllib.request.urlopen({url!r}, timeout=5)"],
        capture_output=True, text=True, timeout=60)


def test_deploy_installs_everything_from_the_local_mirror(
        airgapped_lab: tuple[Lab, Path]) -> None:
    lab_, keyring = airgapped_lab
    outside = _probe(lab_, "http://deb.debian.org/debian/dists/trixie/InRelease")
    # no route out (or no resolver for outside names): either way the internet is not reachable
    network_errors = ("unreachable", "name resolution", "timed out")
    assert outside.returncode != 0
    assert any(e in outside.stderr.lower() for e in network_errors), outside.stderr
    assert _probe(lab_, mirror.mirror_url(lab_.cfg) + "dists/trixie/InRelease").returncode == 0
    missing = subprocess.run(["podman", "exec", f"{lab_.cfg.prefix}1", "dpkg-query", "-W",
                              "slurmd"], capture_output=True, text=True, timeout=30)
    assert missing.returncode != 0, "the base image must not carry Slurm"

    result = deploy(DeployOptions(spec=lab_.spec, runs_root=lab_.runs, playbook=LAB_PLAYBOOK,
                                  extravars={"common_apt_mirror_keyring": str(keyring)}))
    assert result.exit_code == ExitCode.OK, [r.failure for r in result.results]

    for index in (1, 2):
        sources = lab_.exec(index, "sh", "-c",
                            "ls /etc/apt/sources.list.d; cat /etc/apt/sources.list 2>/dev/null"
                            " || true")
        assert sources.split() == ["forge-mirror.sources"]
        policy = lab_.exec(index, "apt-cache", "policy", "slurmd", "munge")
        assert mirror.mirror_url(lab_.cfg).rstrip("/") + " trixie/main" in policy
        assert "deb.debian.org" not in policy
    out = wait_all_idle(lab_)
    assert out.count("idle") == 2, out

"""Shared test helpers and the one container lab of the session.

The lab (its own names, ports, subnet and state dir) is started and deployed at
most once per test session, by whichever lab test asks first; tests of the
deploy, the checks and the sweeps then read its state. Skipped where podman
cannot run.
"""


from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from lab.labkit import LAB_PLAYBOOK, PREFIX, Deployed, Lab, claim_test_labs, podman_usable

from provision.deploy.driver import DeployOptions, deploy
from provision.lab import lab
from provision.lab.config import LabConfig

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "site-specs"
SHARED = ROOT.parent / "shared"
REAL_FIXTURES = SHARED / "fixtures" / "real"


@pytest.fixture(scope="session")
def test_labs_claimed() -> Iterator[None]:
    """This session's hold on the test labs' fixed names, ports and subnets (labkit)."""
    if not podman_usable():
        pytest.skip("podman with runc cannot run here (apt-get install podman runc mmdebstrap)")
    with claim_test_labs():
        yield


@pytest.fixture(scope="session")
def test_lab(tmp_path_factory: pytest.TempPathFactory, test_labs_claimed: None) -> Iterator[Lab]:
    state = tmp_path_factory.mktemp("lab-state")
    cfg = LabConfig(state_dir=state, prefix=PREFIX, nodes=3, ssh_port_base=2320,
                    subnet="10.89.61.0/24", network="forge-t-net")
    info = lab.up(cfg)
    try:
        yield Lab(cfg, info, Path(info.spec), tmp_path_factory.mktemp("runs"))
    finally:
        lab.down(cfg)


@pytest.fixture(scope="session")
def deployed(test_lab: Lab) -> Deployed:
    first = deploy(DeployOptions(spec=test_lab.spec, runs_root=test_lab.runs,
                                 playbook=LAB_PLAYBOOK))
    return Deployed(test_lab, first)




class Run(NamedTuple):
    """One in-process run of the forge CLI through its error boundary."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def forge(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """Run `forge ARGS...` in-process; unpacks as (exit code, stdout, stderr)."""
    from provision.cli.main import main

    def run(*argv: str) -> Run:
        code = 0
        try:
            main(list(argv))
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return Run(code, out, err)

    return run

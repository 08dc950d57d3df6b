"""The deploy driver end to end against a real sshd on loopback (no containers needed):
one run where hosts are ok, failed and unreachable; then --resume reruns only those."""

from __future__ import annotations

import getpass
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from provision.deploy.driver import DeployOptions, deploy
from provision.deploy.settings import Profile
from provision.deploy.summary import summary_lines
from provision.errors import ExitCode

FIXTURES = Path(__file__).parent / "fixtures"
SSHD = "/usr/sbin/sshd"


def _free_base() -> int:
    for base in range(24100, 24900, 3):
        ok = True
        for port in (base, base + 1, base + 2):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
        if ok:
            return base
    raise RuntimeError("no free port triple")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    if not Path(SSHD).exists() or shutil.which("ssh-keygen") is None:
        pytest.skip("openssh-server is not installed")
    d = tmp_path_factory.mktemp("sshd")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host")],
                   check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "client")],
                   check=True)
    (d / "authorized_keys").write_text((d / "client.pub").read_text())
    base = _free_base()
    (d / "sshd_config").write_text(
        f"Port {base}\nPort {base + 1}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPidFile {d / 'sshd.pid'}\n"
        "StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nSubsystem sftp internal-sftp\n")
    host_key = (d / "host.pub").read_text().split()
    (d / "known_hosts").write_text("".join(
        f"[127.0.0.1]:{p} {host_key[0]} {host_key[1]}\n" for p in (base, base + 1, base + 2)))
    sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(50):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", base + 1)) == 0:
                break
        time.sleep(0.1)
    user = getpass.getuser()
    spec = d / "fx.yaml"
    spec.write_text(f"""spec_version: 1
cluster: {{name: fx, domain: fx.internal}}
access: {{user: {user}, ssh_key: {d / 'client'}, known_hosts: {d / 'known_hosts'}}}
networks: {{management: {{subnet: 10.99.0.0/24}}, fabric: {{type: none}}}}
node_groups:
  - name: ctl
    nodes: fx1
    roles: [controller, compute]
    profile: lab-container
    rack: r1
    addresses: {{management: 10.99.0.11, ssh: "127.0.0.1:{base}"}}
  - name: fx
    nodes: fx[2-3]
    roles: [compute]
    profile: lab-container
    rack: r1
    addresses: {{management: 10.99.0.12, ssh: "127.0.0.1:{base + 1}"}}
stack: {{scheduler: slurm}}
""")
    try:
        yield spec, d
    finally:
        sshd.terminate()
        sshd.wait(timeout=10)


@pytest.mark.parametrize("profile", ["forge", "forge-ssh"])
def test_every_outcome_in_one_run_then_resume(site: tuple[Path, Path], tmp_path: Path,
                                              profile: Profile) -> None:
    """Both of forge's connection paths: Mitogen (the default) and Ansible's ssh plugin."""
    spec, _ = site
    runs = tmp_path / "runs"
    out = tmp_path / "out"
    out.mkdir()
    opts = dict(spec=spec, playbook=FIXTURES / "outcomes.yml", runs_root=runs, profile=profile)
    first = deploy(DeployOptions(**opts, extravars={"fx_dir": str(out), "fx_fail_host": "fx2"}))
    outcomes = {r.host: r.outcome for r in first.results}
    assert outcomes == {"fx1": "changed", "fx2": "failed", "fx3": "unreachable"}
    # failed and unreachable in one run: unreachable wins (docs/exit-codes.md precedence)
    assert first.exit_code == ExitCode.HOSTS_UNREACHABLE
    fx2 = next(r for r in first.results if r.host == "fx2")
    assert fx2.failure is not None and fx2.failure.task == "Fail where asked"
    assert fx2.failure.message == "fixture failure on fx2"
    assert fx2.failure.action == "ansible.builtin.fail"
    text = "\n".join(summary_lines(first))
    assert "fx1  ok, changed" in text
    assert 'fx2: failed at task "Fail where asked"' in text
    assert "fx3: unreachable at task" in text
    assert "FAILED" in (first.run_dir / "hosts" / "fx2.log").read_text()
    record = json.loads((first.run_dir / "forge-run.json").read_text())
    assert record["targets"] == ["fx1", "fx2", "fx3"] and record["stats"]["dark"] == {"fx3": 1}
    assert record["strategy"] == ("mitogen_linear" if profile == "forge" else "linear")
    assert (out / "fx1.txt").read_text() == "fx1\n"

    second = deploy(DeployOptions(**opts, resume=True,
                                  extravars={"fx_dir": str(out), "fx_fail_host": "none"}))
    assert second.resumed_from == first.run_dir
    assert second.targets == ("fx2", "fx3")
    assert {r.host: r.outcome for r in second.results} == {"fx2": "ok", "fx3": "unreachable"}
    assert second.exit_code == ExitCode.HOSTS_UNREACHABLE


@pytest.mark.parametrize("profile", ["forge", "forge-ssh"])
def test_a_host_key_that_does_not_match_is_refused(site: tuple[Path, Path], tmp_path: Path,
                                                   profile: Profile,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """known_hosts is enforced on both connection paths: a changed key is unreachable.

    A fresh SSH control directory: a master connection left by an earlier test
    was verified when it opened and would be reused without a new check."""
    monkeypatch.setenv("ANSIBLE_SSH_CONTROL_PATH_DIR", str(tmp_path / "cp"))
    spec, d = site
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")],
                   check=True)
    other = (tmp_path / "other.pub").read_text().split()
    wrong = tmp_path / "known_hosts"
    wrong.write_text("".join(f"{line.split()[0]} {other[0]} {other[1]}\n"
                             for line in (d / "known_hosts").read_text().splitlines()))
    wrong_spec = tmp_path / "fx.yaml"
    wrong_spec.write_text(spec.read_text().replace(str(d / "known_hosts"), str(wrong)))
    out = tmp_path / "out"
    out.mkdir()
    res = deploy(DeployOptions(spec=wrong_spec, playbook=FIXTURES / "outcomes.yml",
                               runs_root=tmp_path / "runs", profile=profile, limit="fx1",
                               extravars={"fx_dir": str(out), "fx_fail_host": "none"}))
    assert {r.host: r.outcome for r in res.results} == {"fx1": "unreachable"}
    assert not (out / "fx1.txt").exists()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "provision", "deploy", *args],
                          capture_output=True, text=True, timeout=300)


def test_cli_rejects_unknown_nodes_and_resume_without_history(site: tuple[Path, Path],
                                                              tmp_path: Path) -> None:
    spec, _ = site
    bad = _cli(str(spec), "--limit", "fx[7-9]", "--runs-dir", str(tmp_path))
    assert bad.returncode == 2
    assert "fx[7-9]" in bad.stderr and "Traceback" not in bad.stderr
    none = _cli(str(spec), "--resume", "--runs-dir", str(tmp_path / "empty"))
    assert none.returncode == 2 and "no earlier deploy of site 'fx'" in none.stderr


def test_cli_exit_code_4_when_only_unreachable(site: tuple[Path, Path], tmp_path: Path) -> None:
    spec, _ = site
    res = _cli(str(spec), "--playbook", str(FIXTURES / "outcomes.yml"), "--limit", "fx3",
               "--runs-dir", str(tmp_path))
    assert res.returncode == 4, res.stderr
    assert "fx3: unreachable at task" in res.stdout
    assert "forge: error: unreachable: fx3" in res.stderr

"""Node state after deploy, checked with pytest-testinfra over SSH (host keys verified)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import testinfra

from lab.labkit import Deployed

pytestmark = pytest.mark.lab


def _ssh_config(deployed: Deployed) -> Path:
    cfg = deployed.lab.cfg
    path = cfg.state_dir / "ssh_config"
    blocks = [
        f"Host {name}\n  HostName 127.0.0.1\n  Port {cfg.ssh_port(i)}\n  User root\n"
        f"  IdentityFile {cfg.ssh_key}\n  UserKnownHostsFile {cfg.known_hosts}\n"
        "  StrictHostKeyChecking yes\n  BatchMode yes\n"
        for i, name in enumerate(cfg.node_names, start=1)]
    path.write_text("".join(blocks))
    return path


@pytest.fixture(scope="module")
def hosts(deployed: Deployed) -> dict[str, testinfra.host.Host]:
    config = _ssh_config(deployed)
    return {name: testinfra.get_host(f"ssh://{name}", ssh_config=str(config))
            for name in deployed.lab.names}


def test_munge_key_is_0400_munge_and_shared(hosts: dict) -> None:
    sums = set()
    for host in hosts.values():
        key = host.file("/etc/munge/munge.key")
        assert key.mode == 0o400
        assert key.user == "munge" and key.group == "munge"
        assert key.size >= 32
        sums.add(key.sha256sum)
    assert len(sums) == 1, "every node must have the controller's key"


def test_services_run_where_they_belong(hosts: dict, deployed: Deployed) -> None:
    controller = deployed.lab.names[0]
    for name, host in hosts.items():
        for svc in ("munge", "slurmd", "ssh"):
            assert host.service(svc).is_running, f"{svc} on {name}"
            assert host.service(svc).is_enabled, f"{svc} on {name}"
        assert host.service("slurmctld").is_running == (name == controller)


def test_slurm_conf_is_identical_and_describes_the_lab(hosts: dict, deployed: Deployed) -> None:
    texts = {name: host.file("/etc/slurm/slurm.conf").content_string
             for name, host in hosts.items()}
    assert len(set(texts.values())) == 1
    conf = next(iter(texts.values()))
    assert "ClusterName=lab" in conf
    assert f"SlurmctldHost={deployed.lab.names[0]}({deployed.lab.cfg.address(1)})" in conf
    # lab-container profile: container: true -> no cgroup plugins
    assert "ProctrackType=proctrack/linuxproc" in conf and "TaskPlugin=task/none" in conf
    for i, name in enumerate(deployed.lab.names, start=1):
        assert (f"NodeName={name} NodeAddr={deployed.lab.cfg.address(i)} Sockets=1 "
                "CoresPerSocket=1 ThreadsPerCore=1 RealMemory=972 Gres=gpu:fake:2") in conf
    # no slurmdbd in the lab: AccountingStorageTRES=gres/gpu would stop slurmctld
    assert "AccountingStorageTRES" not in conf
    for line in ("UnkillableStepTimeout=180",
                 "RebootProgram=/usr/sbin/reboot", "ResumeTimeout=1200"):
        assert line in conf.splitlines(), line
    assert "CryptoType" not in conf          # gone from Slurm 23.11 on (cred/munge is the default)
    gres = hosts[deployed.lab.names[1]].file("/etc/slurm/gres.conf").content_string
    assert "Name=gpu Type=fake File=/dev/lab-fake-gpu0 Cores=0" in gres.splitlines()
    assert "Name=gpu Type=fake File=/dev/lab-fake-gpu1 Cores=0" in gres.splitlines()


def test_lab_runs_the_debian_13_slurm(hosts: dict, deployed: Deployed) -> None:
    for host in hosts.values():
        assert host.file("/etc/os-release").contains('VERSION_ID="13"')
        assert host.package("slurm-client").version.startswith("24.11.")


def test_slurmd_registers_the_gres_slurm_conf_promises(hosts: dict, deployed: Deployed) -> None:
    """What the role compares after slurmd starts, read here independently."""
    out = hosts[deployed.lab.names[1]].run("slurmd -G")
    text = out.stdout + out.stderr
    records = re.findall(r"Gres Name=gpu Type=(\S+) Count=(\d+) Index=(\d+).*File=(\S+)", text)
    assert [(t, c, f) for t, c, _i, f in records] == [
        ("fake", "1", "/dev/lab-fake-gpu0"), ("fake", "1", "/dev/lab-fake-gpu1")], text


def test_os_baseline(hosts: dict, deployed: Deployed) -> None:
    for host in hosts.values():
        limits = host.file("/etc/security/limits.d/90-forge.conf").content_string
        assert "*    hard    memlock    unlimited" in limits
        assert "blacklist nouveau" in host.file(
            "/etc/modprobe.d/forge-blacklist-nouveau.conf").content_string
        grub = host.file("/etc/default/grub.d/90-forge.cfg").content_string
        # iommu auto: passthrough on AMD (amd_iommu=off would drop x2APIC and the CPUs whose
        # APIC ID is above 255), off on Intel; never amd_iommu=on, which the kernel does not know
        amd = "AMD" in host.file("/proc/cpuinfo").content_string
        assert ("iommu=pt" in grub) == amd and ("intel_iommu=off" in grub) != amd
        assert "amd_iommu=" not in grub
        sudoers = host.file("/etc/sudoers.d/90-forge")
        assert sudoers.mode == 0o440 and "Defaults use_pty" in sudoers.content_string
        sshd = host.run("sshd -T")
        assert sshd.rc == 0
        assert "passwordauthentication no" in sshd.stdout
        assert "permitrootlogin without-password" in sshd.stdout
        etc_hosts = host.file("/etc/hosts").content_string
        for i, name in enumerate(deployed.lab.names, start=1):
            assert f"{deployed.lab.cfg.address(i)} {name}.lab.internal {name}" in etc_hosts


def test_time_daemon_installed_but_left_to_the_host_in_containers(hosts: dict) -> None:
    for host in hosts.values():
        assert host.package("chrony").is_installed
        assert not host.service("chrony").is_running   # containers share the host clock

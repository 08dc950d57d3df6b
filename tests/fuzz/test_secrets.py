"""A secret placed in the environment, and one referenced by the spec, never lands in an
inventory, a deploy, check or sweep run directory, a log or a report forge writes."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from fuzz.forgerun import forge_process

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "FORGE_BMC_PASSWORD": "S3cr3t-bmc-Pa55w0rd-4711",      # referenced by the spec
    "FORGE_API_TOKEN": "t0ken-never-written-9f3e2a",       # merely in the environment
    "ANSIBLE_BECOME_PASS": "become-Pa55-never-written",    # an Ansible variable, still secret
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _spec(tmp_path: Path) -> Path:
    """The lab's spec shape, its nodes on a loopback port where nothing listens."""
    doc = yaml.safe_load((ROOT / "site-specs" / "lab.yaml").read_text())
    key, known = tmp_path / "id_ed25519", tmp_path / "known_hosts"
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-f", str(key)], check=True)
    known.write_text("")
    doc["access"] = {"user": "root", "ssh_key": str(key), "known_hosts": str(known)}
    port = _free_port()
    doc["node_groups"] = [{"name": "ctl", "nodes": "sec-n1", "roles": ["controller", "compute"],
                           "profile": "lab-container", "rack": "lab",
                           "addresses": {"management": "10.89.0.11",
                                         "ssh": f"127.0.0.1:{port}"}}]
    doc["bmc"] = {"username": "USERID", "password": {"env": "FORGE_BMC_PASSWORD"}}
    spec = tmp_path / "site.yaml"
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    return spec


def _grep(root: Path, needles: list[str]) -> list[str]:
    hits = []
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            data = path.read_bytes()
            hits += [f"{path}: {n}" for n in needles if n.encode() in data]
    return hits


@pytest.mark.slow
def test_no_secret_in_inventory_run_dirs_logs_or_reports(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    env = {**SECRETS, "FORGE_RUNS_DIR": str(work / "runs")}
    forge_process("render", spec, "-o", work / "inventory", env=env, cwd=work).assert_ok()
    deploy = forge_process("deploy", spec, "--check", "--runs-dir", work / "runs", "--json",
                           env=env, cwd=work, timeout=300)
    assert deploy.code == 4, deploy.err[-2000:]
    check = forge_process("check", spec, "--via", "local", "--checks", "tools", "--nodes",
                          "sec-n1", "-o", work / "check-run", "--json", env=env, cwd=work,
                          timeout=300)
    assert check.code in (0, 1), check.err[-2000:]
    sweep = forge_process("sweep", spec, "--db", work / "history.db", "--json", env=env,
                          cwd=work, timeout=300)
    assert sweep.code == 4, sweep.err[-2000:]
    assert list((work / "runs").glob("sweep-*/raw/sec-n1.out"))   # it kept a run directory
    records = work / "records.jsonl"
    records.write_text((work / "check-run" / "measurements.jsonl").read_text())
    forge_process("analyze", records, "--json", "--junit", work / "r.xml", "--html",
                  work / "r.html", "--prom", work / "r.prom", env=env, cwd=work)
    assert list((work / "runs").glob("deploy-*/artifacts/ansible/command"))  # it ran
    hits = _grep(work, list(SECRETS.values()))
    for run in (deploy, check, sweep):
        hits += [f"output: {n}" for n in SECRETS.values() if n in run.out + run.err]
    assert hits == []

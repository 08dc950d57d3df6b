"""The gpudirect role's choice between DMA-BUF and nvidia-peermem, evaluated by
real Ansible on the control host from a node's probe result."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from provision import proc

from .conftest import HERE, VENV_BIN, ansible_env

OPEN = "Dual MIT/GPL"          # MODULE_LICENSE of NVIDIA's open kernel modules
CLOSED = "NVIDIA"


def _decide(tmp_path: Path, mode: str, *, license_: str, kernel: str,
            ofed: str) -> tuple[bool, str]:
    probe = {"nvidia_loaded": "580.95.05", "nvidia_installed": "580.95.05",
             "peermem_installed": "", "peermem_loaded": "no", "ofed": ofed,
             "ib_core_loaded": "A", "ib_core_installed": "A", "nvidia_license": license_,
             "kernel": kernel}
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("localhost ansible_connection=local "
                         f"ansible_python_interpreter={sys.executable}\n")
    extra = {"forge_gpudirect_mode": mode, "gpudirect_versions_raw": {"stdout": json.dumps(probe)}}
    result = proc.run([str(VENV_BIN / "ansible-playbook"), "-i", str(inventory),
                       str(HERE / "gpudirect_decide.yml"), "-e", json.dumps(extra)],
                      timeout=180, env=ansible_env(tmp_path), cwd=str(tmp_path))
    return result.ok, result.stdout + result.stderr


@pytest.mark.parametrize(("mode", "license_", "kernel", "ofed", "chosen"), [
    ("auto", OPEN, "6.12.48+deb13-amd64", "inbox", "dmabuf"),
    ("auto", OPEN, "6.8.0-45-generic", "MLNX_OFED_LINUX-25.01-0.6.0.0", "dmabuf"),
    ("auto", CLOSED, "6.8.0-45-generic", "MLNX_OFED_LINUX-25.01-0.6.0.0", "peermem"),
    ("auto", OPEN, "5.4.0-150-generic", "MLNX_OFED_LINUX-24.10-1.1.4.0", "peermem"),
    ("peermem", OPEN, "6.8.0-45-generic", "MLNX_OFED_LINUX-25.01-0.6.0.0", "peermem"),
    ("dmabuf", OPEN, "5.14.0-427.el9.x86_64", "inbox", "dmabuf"),
])
def test_mode_chosen(tmp_path: Path, mode: str, license_: str, kernel: str, ofed: str,
                     chosen: str) -> None:
    ok, out = _decide(tmp_path, mode, license_=license_, kernel=kernel, ofed=ofed)
    assert ok, out[-3000:]
    assert f"GPUDIRECT_MODE={chosen}" in out


@pytest.mark.parametrize(("mode", "license_", "kernel", "ofed", "message"), [
    # the default stack (inbox) cannot load nvidia-peermem: never forced
    ("peermem", OPEN, "6.8.0-45-generic", "inbox", "nvidia-peermem needs DOCA-OFED"),
    ("dmabuf", CLOSED, "6.8.0-45-generic", "inbox", "DMA-BUF needs the open kernel modules"),
    ("dmabuf", OPEN, "5.4.0-150-generic", "inbox", "kernel >= 5.12 (running 5.4.0-150-generic)"),
    ("auto", CLOSED, "6.8.0-45-generic", "inbox", "nvidia-peermem needs DOCA-OFED"),
])
def test_mode_that_cannot_work_fails_naming_why(tmp_path: Path, mode: str, license_: str,
                                                kernel: str, ofed: str, message: str) -> None:
    ok, out = _decide(tmp_path, mode, license_=license_, kernel=kernel, ofed=ofed)
    assert not ok, out[-3000:]
    assert message in out, out[-3000:]

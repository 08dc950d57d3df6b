"""Which packages the nvidia_driver and doca_ofed roles hold (every package of the driver
branch, every package DOCA brought) and which GPUs nvidia_driver finds without
persistence mode, evaluated by real Ansible on tool output."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from provision import proc

from .conftest import HERE, VENV_BIN, ansible_env

# dpkg-query -W -f='${db:Status-Abbrev} ${binary:Package} ${Version}\n' as a node with
# the R580 open driver from NVIDIA's repository would print it (test input, written here)
LISTING = """\
ii  cuda-drivers-580 580.95.05-1 amd64
ii  libnvidia-compute-580:amd64 580.95.05-0ubuntu1 amd64
ii  nvidia-dkms-580-open 580.95.05-0ubuntu1 amd64
ii  nvidia-kernel-source-580-open 580.95.05-0ubuntu1 amd64
ii  nvidia-open-580 580.95.05-0ubuntu1 amd64
ii  nvidia-firmware-580 580.95.05-0ubuntu1 amd64
ii  libnvidia-ml-dev 12.8.90-1 amd64
ii  datacenter-gpu-manager-4-core 1:4.1.1-1 amd64
rc  nvidia-dkms-570-open 570.172.08-0ubuntu1 amd64
ii  linux-headers-6.8.0-45-generic 6.8.0-45.45 amd64
ii  linux-image-6.8.0-45-generic 6.8.0-45.45 amd64
ii  linux-modules-6.8.0-45-generic 6.8.0-45.45 amd64
ii  linux-generic 6.8.0.45.45 amd64
ii  linux-image-generic 6.8.0.45.45 amd64
ii  linux-headers-generic 6.8.0.45.45 amd64
hi  linux-image-generic-hwe-22.04 6.8.0.45.45~22.04.1 amd64
rc  linux-image-virtual 6.8.0.40.40 amd64
ii  linux-image-amd64 6.1.115-1 amd64
ii  linux-image-6.1.0-27-amd64 6.1.115-1 amd64
ii  linux-libc-dev:amd64 6.8.0-45.45 amd64
ii  linux-firmware 20240318.git3b128b60-0ubuntu2.3 amd64
ii  linux-base 4.5ubuntu9 all
ii  openssh-server 1:9.6p1-3ubuntu13 amd64
ii  doca-ofed 3.4.1-071000 amd64
ii  mlnx-ofed-kernel-dkms 26.04.OFED.26.04.1.1.0.1-1 all
ii  rdma-core 2604mlnx59-1.2604110 amd64
ii  ibverbs-providers:amd64 2604mlnx59-1.2604110 amd64
"""


def test_every_package_of_the_branch_is_held(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("localhost ansible_connection=local "
                         f"ansible_python_interpreter={sys.executable}\n")
    extra = {"forge_versions": {"driver_branch": "580"},
             "nvidia_driver_dpkg": {"stdout_lines": LISTING.splitlines()},
             "doca_ofed_installed": {"stdout_lines": LISTING.splitlines()},
             # nvidia-smi --query-gpu=index,persistence_mode --format=csv,noheader
             "nvidia_driver_persistence": {"stdout_lines": ["0, Enabled", "1, Disabled",
                                                            "2, Enabled"]}}
    result = proc.run([str(VENV_BIN / "ansible-playbook"), "-i", str(inventory),
                       str(HERE / "package_holds.yml"), "-e", json.dumps(extra)],
                      timeout=180, env=ansible_env(tmp_path), cwd=str(tmp_path))
    out = result.stdout + result.stderr
    assert result.ok, out[-3000:]
    text = out.replace('\\"', '"')
    held = json.loads(re.search(r"HELD=(\[.*?\])", text)[1])
    assert json.loads(re.search(r"OFF=(\[.*?\])", text)[1]) == ["1, Disabled"]
    # DOCA: every package it brought (OFED/mlnx versions), the meta-package by name
    assert json.loads(re.search(r"DOCA=(\[.*?\])", text)[1]) == [
        "mlnx-ofed-kernel-dkms", "rdma-core", "ibverbs-providers"]
    # the kernel meta-packages that would bring the next kernel ABI, not the versioned ones
    # (held as the running kernel's), held ones too (hi: released again when holds are turned
    # off), not one removed (rc), not libc headers or firmware
    assert json.loads(re.search(r"KERNEL=(\[.*?\])", text)[1]) == [
        "linux-image-generic", "linux-headers-generic", "linux-image-generic-hwe-22.04",
        "linux-image-amd64"]
    assert held == ["cuda-drivers-580", "libnvidia-compute-580", "nvidia-dkms-580-open",
                    "nvidia-kernel-source-580-open", "nvidia-open-580", "nvidia-firmware-580"]

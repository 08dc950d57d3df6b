"""The one hardware probe every role reads (playbooks/roles/hardware_facts), run by
real Ansible on a directory laid out like sysfs (no GPU or RDMA device here).

The vendor and class values are those of real devices: an H100 is a 3D
controller (0x0302), its HDMI audio function is 0x0403, a ConnectX-7 is
vendor 0x15b3 class 0x0207 (InfiniBand) or 0x0200 (Ethernet).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from provision import proc

from .conftest import VENV_BIN, ansible_env

PLAY = """
- name: Probe
  hosts: all
  gather_facts: false
  tasks:
    - name: The shared probe
      ansible.builtin.include_role:
        name: hardware_facts
    - name: Show it
      ansible.builtin.debug:
        msg: "HW={{ hardware_facts_node | to_json }}"
"""


def _device(root: Path, name: str, vendor: str, cls: str) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "vendor").write_text(vendor + "\n")
    (root / name / "class").write_text(cls + "\n")


def _port(root: Path, dev: str, link_layer: str) -> None:
    (root / dev / "ports" / "1").mkdir(parents=True)
    (root / dev / "ports" / "1" / "link_layer").write_text(link_layer + "\n")


def _probe(tmp_path: Path, pci: Path, rdma: Path) -> dict[str, object]:
    (tmp_path / "play.yml").write_text(PLAY)
    extra = {"hardware_facts_pci_root": str(pci), "hardware_facts_rdma_root": str(rdma),
             "ansible_python_interpreter": sys.executable}
    result = proc.run([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                       str(tmp_path / "play.yml"), "-e", json.dumps(extra)],
                      timeout=180, env=ansible_env(tmp_path), cwd=str(tmp_path))
    assert result.ok, result.stdout[-3000:]
    line = next(x for x in result.stdout.splitlines() if '"msg": "HW=' in x)
    found: dict[str, object] = json.loads(json.loads("{" + line.strip() + "}")["msg"][3:])
    return found


def test_gpus_nics_and_ports_are_found(tmp_path: Path) -> None:
    pci, rdma = tmp_path / "pci", tmp_path / "infiniband"
    _device(pci, "0000:01:00.0", "0x10de", "0x030200")   # H100: 3D controller
    _device(pci, "0000:01:00.1", "0x10de", "0x040300")   # its audio function: not a GPU
    _device(pci, "0000:41:00.0", "0x10de", "0x030000")   # VGA-class NVIDIA GPU
    _device(pci, "0000:21:00.0", "0x15b3", "0x020700")   # ConnectX-7 (InfiniBand)
    _device(pci, "0000:c1:00.0", "0x1022", "0x060400")   # AMD bridge
    _port(rdma, "mlx5_0", "InfiniBand")
    _port(rdma, "mlx5_1", "Ethernet")
    assert _probe(tmp_path, pci, rdma) == {
        "gpus": ["0000:01:00.0", "0000:41:00.0"], "rdma_nics": ["0000:21:00.0"],
        "rdma_devices": 2, "ib_ports": 1, "eth_ports": 1}


def test_a_node_without_devices_has_none(tmp_path: Path) -> None:
    pci = tmp_path / "pci"
    _device(pci, "0000:00:01.0", "0x8086", "0x060000")
    assert _probe(tmp_path, pci, tmp_path / "missing") == {
        "gpus": [], "rdma_nics": [], "rdma_devices": 0, "ib_ports": 0, "eth_ports": 0}

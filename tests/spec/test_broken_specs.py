"""forge validate rejects broken specs with the YAML path and file:line of each problem.

Each case is a small spec with one defect; the test asserts the exit code (2),
that no traceback is printed, and that the message names the path and line.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from provision.cli.main import main

BASE = """\
spec_version: 1
cluster:
  name: t
  domain: t.example
networks:
  management: {subnet: 10.0.0.0/24}
  bmc: {subnet: 10.0.1.0/24}
  fabric:
    type: infiniband
    rails:
      - {name: rail0, subnet: 10.2.0.0/24}
node_groups:
  - name: head
    nodes: head01
    roles: [controller, login]
    profile: sr650v3-head
    addresses: {management: 10.0.0.10, bmc: 10.0.1.10}
  - name: gpu
    nodes: gpu[01-02]
    roles: [compute]
    profile: sr675v3-h100nvl-ib
    addresses: {management: 10.0.0.101, bmc: 10.0.1.101, fabric: 101}
stack:
  scheduler: slurm
"""


def mutate(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


# (case id, spec text, expected YAML path in message, a text on the expected line, expected words)
# The expected line is where that text first appears in the spec (for a syntax error,
# the line where the parser notices it).
CASES: list[tuple[str, str, str, str, str]] = [
    ("unknown-top-key", BASE + "acceptence: {}\n", "acceptence", 'acceptence:', "did you mean 'acceptance'"),
    ("unknown-nested-key", mutate("    roles: [compute]", "    role: [compute]"),
     "node_groups[1].role", 'role: [compute]', "did you mean 'roles'"),
    ("wrong-type", mutate("  name: t\n", "  name: [t]\n"), "cluster.name", 'name: [t]', "expected string"),
    ("bad-enum-scheduler", mutate("scheduler: slurm", "scheduler: pbs"), "stack.scheduler", 'scheduler: pbs',
     "not one of"),
    ("missing-required", mutate("    profile: sr675v3-h100nvl-ib\n", ""), "node_groups[1]", '- name: gpu',
     "'profile' is required"),
    ("spec-version-newer", mutate("spec_version: 1", "spec_version: 7"), "spec_version", 'spec_version: 7',
     "newer than this forge"),
    ("spec-version-string", mutate("spec_version: 1", "spec_version: one"), "spec_version", 'spec_version: one',
     "must be an integer"),
    ("duplicate-hostname", mutate("nodes: gpu[01-02]", "nodes: head01,gpu01"),
     "node_groups[1].nodes", 'nodes: head01,gpu01', "duplicate host name head01"),
    ("duplicate-management-ip", mutate("management: 10.0.0.101,", "management: 10.0.0.10,"),
     "node_groups[1].addresses.management", 'management: 10.0.0.10, bmc: 10.0.1.101', "duplicate management address 10.0.0.10"),
    ("duplicate-bmc", mutate("bmc: 10.0.1.101,", "bmc: 10.0.1.10,"),
     "node_groups[1].addresses.bmc", 'bmc: 10.0.1.10, fabric', "duplicate bmc address"),
    ("duplicate-mac", BASE.replace(
        "    addresses: {management: 10.0.0.101, bmc: 10.0.1.101, fabric: 101}\n",
        "    addresses: {management: 10.0.0.101, bmc: 10.0.1.101, fabric: 101}\n"
        "    node_data:\n      gpu01: {macs: {mgmt: '7c:c2:55:00:00:01'}}\n"
        "      gpu02: {macs: {mgmt: '7C:C2:55:00:00:01'}}\n"),
     "node_groups[1].node_data.gpu02.macs.mgmt", 'gpu02: {macs', "duplicate MAC address"),
    ("bad-mac", BASE.replace(
        "    addresses: {management: 10.0.0.101, bmc: 10.0.1.101, fabric: 101}\n",
        "    addresses: {management: 10.0.0.101, bmc: 10.0.1.101, fabric: 101}\n"
        "    node_data:\n      gpu01: {macs: {mgmt: '7c:c2:55:00:00'}}\n"),
     "node_groups[1].node_data.gpu01.macs.mgmt", 'gpu01: {macs', "does not match"),
    ("ip-outside-subnet", mutate("management: 10.0.0.101,", "management: 10.9.0.101,"),
     "node_groups[1].addresses.management", 'management: 10.9.0.101', "outside networks.management.subnet"),
    ("bmc-outside-subnet", mutate("bmc: 10.0.1.101,", "bmc: 10.0.0.201,"),
     "node_groups[1].addresses.bmc", 'bmc: 10.0.0.201', "outside networks.bmc.subnet"),
    ("overlapping-subnets", mutate("bmc: {subnet: 10.0.1.0/24}", "bmc: {subnet: 10.0.0.128/25}"),
     "networks.bmc.subnet", 'bmc: {subnet: 10.0.0.128/25}', "overlaps"),
    ("subnet-host-bits", mutate("management: {subnet: 10.0.0.0/24}",
                                "management: {subnet: 10.0.0.5/24}"),
     "networks.management.subnet", 'subnet: 10.0.0.5/24', "has host bits set"),
    ("size-contradiction", mutate("  domain: t.example\n", "  domain: t.example\n  size: small\n"),
     "cluster.size", 'size: small', "means 4 GPU compute nodes, but the spec has 2"),
    ("nvlink-on-l40s", BASE.replace("profile: sr675v3-h100nvl-ib", "profile: my-l40s").replace(
        "stack:\n", "profiles:\n  my-l40s:\n    extends: sr675v3-l40s-ovx\n"
        "    gpu: {model: L40S, count: 4, nvlink_pairs: [[0, 1], [2, 3]]}\n"
        "    nics: [{model: ConnectX-7 NDR200, count: 2, purpose: compute}]\nstack:\n"),
     "profiles.my-l40s.gpu.nvlink_pairs", 'nvlink_pairs: [[0, 1], [2, 3]]', "L40S has no NVLink"),
    ("slurm-without-controller", mutate("roles: [controller, login]", "roles: [login]"),
     "node_groups", 'node_groups:', "needs a Slurm controller"),
    ("unknown-profile", mutate("profile: sr675v3-h100nvl-ib", "profile: sr675v3-h100-ib"),
     "node_groups[1].profile", 'profile: sr675v3-h100-ib', "did you mean 'sr675v3-h100nvl-ib'"),
    ("bad-nodeset", mutate("nodes: gpu[01-02]", "nodes: gpu[01-02"), "node_groups[1].nodes", 'nodes: gpu[01-02',
     "invalid node set"),
    ("node-data-not-in-group", BASE.replace(
        "    addresses: {management: 10.0.0.101, bmc: 10.0.1.101, fabric: 101}\n",
        "    addresses: {management: 10.0.0.101, bmc: 10.0.1.101, fabric: 101}\n"
        "    node_data:\n      gpu09: {serial: X1}\n"),
     "node_groups[1].node_data.gpu09", 'gpu09:', "not in this group's nodes"),
    ("pair-index-out-of-range", BASE.replace("profile: sr675v3-h100nvl-ib", "profile: four").replace(
        "stack:\n", "profiles:\n  four:\n    extends: sr675v3-h100nvl-ib\n"
        "    gpu: {model: H100 NVL, count: 4, nvlink_pairs: [[0, 1], [2, 5]]}\nstack:\n"),
     "profiles.four.gpu.nvlink_pairs[1]", '[2, 5]', "GPU index 5 out of range for 4 GPUs"),
    ("gpu-in-two-pairs", BASE.replace("profile: sr675v3-h100nvl-ib", "profile: four").replace(
        "stack:\n", "profiles:\n  four:\n    extends: sr675v3-h100nvl-ib\n"
        "    gpu: {model: H100 NVL, count: 4, nvlink_pairs: [[0, 1], [1, 2]]}\nstack:\n"),
     "profiles.four.gpu.nvlink_pairs", '[[0, 1], [1, 2]]', "more than one bridged pair"),
    ("invalid-subnet", mutate("rails:\n      - {name: rail0, subnet: 10.2.0.0/24}",
                              "rails:\n      - {name: rail0, subnet: 10.2.0.0/33}"),
     "networks.fabric.rails[0].subnet", '10.2.0.0/33', "invalid subnet"),
    ("duplicate-yaml-key", mutate("  domain: t.example\n", "  domain: t.example\n  name: u\n"),
     "cluster.name", '  name: u', "duplicate key (first at line 3)"),
    ("invalid-yaml", mutate("    roles: [compute]", "    roles: [compute"), "", 'profile: sr675v3-h100nvl-ib', "invalid YAML"),
    ("extends-unknown", BASE.replace("stack:\n", "profiles:\n  x:\n    extends: nope\nstack:\n"),
     "profiles.x.extends", 'extends: nope', "unknown profile 'nope'"),
    ("extends-loop", BASE.replace("stack:\n", "profiles:\n  a: {extends: b}\n  b: {extends: a}\n"
                                  "stack:\n"), "profiles.", 'a: {extends: b}', "inheritance loops"),
    ("too-many-rails", mutate("      - {name: rail0, subnet: 10.2.0.0/24}",
                              "\n".join(f"      - {{name: r{i}, subnet: 10.2.{i}.0/24}}"
                                        for i in range(9))),
     "networks.fabric.rails", 'rails:', "9 rails but profile 'sr675v3-h100nvl-ib' has only 8"),
    ("roce-settings-on-ib", mutate("    type: infiniband\n",
                                   "    type: infiniband\n    roce: {pfc_priority: 3}\n"),
     "networks.fabric.roce", 'roce: {pfc_priority', "RoCE settings given but the fabric type is 'infiniband'"),
    ("ib-profile-on-roce", mutate("    type: infiniband\n", "    type: roce\n"),
     "node_groups[1].profile", 'profile: sr675v3-h100nvl-ib', "ConnectX-7 NDR200 compute NICs (InfiniBand)"),
    ("plaintext-password", BASE + "bmc:\n  username: USERID\n  password: hunter2\n",
     "bmc.password", 'password: hunter2', "never the secret itself"),
    ("threshold-out-of-range", BASE + "acceptance:\n  thresholds: {hbm_bandwidth: 2.5}\n",
     "acceptance.thresholds.hbm_bandwidth", 'thresholds: {hbm', "2.5"),
    ("profile-thresholds-unused", BASE + "acceptance:\n  profile_thresholds:\n"
     "    sr675v3-l40s-ovx: {hbm_bandwidth: 0.7}\n",
     "acceptance.profile_thresholds.sr675v3-l40s-ovx", 'sr675v3-l40s-ovx: {hbm', "which no node group uses"),
    ("opensm-without-hosts", mutate("    type: infiniband\n",
                                    "    type: infiniband\n    subnet_manager: opensm\n"),
     "networks.fabric.subnet_manager", 'subnet_manager: opensm', "needs opensm_hosts"),
    ("gateway-outside", mutate("management: {subnet: 10.0.0.0/24}",
                               "management: {subnet: 10.0.0.0/24, gateway: 10.0.5.1}"),
     "networks.management.gateway", 'gateway: 10.0.5.1', "outside subnet"),
    ("explicit-ip-collides-with-allocated", BASE.replace(
        "    addresses: {management: 10.0.0.101, bmc: 10.0.1.101, fabric: 101}\n",
        "    addresses: {management: 10.0.0.101, bmc: 10.0.1.101, fabric: 101}\n"
        "    node_data:\n      gpu01: {management_ip: 10.0.0.102}\n"),
     "node_groups[1].addresses.management", 'management: 10.0.0.101, bmc', "duplicate management address 10.0.0.102"),
    ("unknown-gpu-model", BASE.replace("profile: sr675v3-h100nvl-ib", "profile: b2").replace(
        "stack:\n", "profiles:\n  b2:\n    extends: sr675v3-h100nvl-ib\n"
        "    gpu: {model: B300, count: 8, nvlink_pairs: []}\nstack:\n"),
     "profiles.b2.gpu.model", 'model: B300', "unknown GPU model 'B300'"),
    ("kubernetes-without-control-plane", mutate("roles: [controller, login]", "roles: [login]")
     .replace("scheduler: slurm", "scheduler: kubernetes"), "node_groups", 'node_groups:',
     "Kubernetes control plane"),
    ("document-not-mapping", "- just\n- a list\n", "", '- just', "must be a mapping"),
    ("bios-baseline-unquoted-off", BASE + "bmc:\n  bios_baseline:\n    Processors_SMTMode: Off\n",
     "bmc.bios_baseline.Processors_SMTMode", "Processors_SMTMode: Off",
     "YAML reads an unquoted Off as false"),
]


def line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in spec")


@pytest.mark.parametrize(("text", "path", "needle", "words"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_broken_spec_is_rejected_with_path_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    text: str, path: str, needle: str,
                                                    words: str) -> None:
    spec = tmp_path / "site.yaml"
    spec.write_text(text)
    with pytest.raises(SystemExit) as exc:
        main(["validate", str(spec)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = line_of(text, needle)
    matching = [ln for ln in err.splitlines() if words in ln]
    assert matching, err
    assert any(f"{spec}:{line}:" in ln and path in ln for ln in matching), err


def test_at_least_25_cases() -> None:
    assert len(CASES) >= 25


def test_all_problems_listed_not_just_first(tmp_path: Path) -> None:
    text = mutate("management: 10.0.0.101,", "management: 10.9.0.101,").replace(
        "bmc: 10.0.1.101,", "bmc: 10.0.1.10,")
    spec = tmp_path / "s.yaml"
    spec.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "provision", "validate", str(spec)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "outside networks.management.subnet" in proc.stderr
    assert "duplicate bmc address 10.0.1.10" in proc.stderr
    assert "4 problems" in proc.stderr or "problems in site spec" in proc.stderr


def test_alias_bomb_refused_quickly(tmp_path: Path) -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    spec = tmp_path / "bomb.yaml"
    spec.write_text("\n".join(lines) + "\n")
    proc = subprocess.run([sys.executable, "-m", "provision", "validate", str(spec)],
                          capture_output=True, text=True, timeout=20)
    assert proc.returncode == 2
    assert "alias expansion bomb" in proc.stderr


def test_python_tags_are_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    spec = tmp_path / "evil.yaml"
    spec.write_text(f"spec_version: !!python/object/apply:os.system ['touch {marker}']\n")
    proc = subprocess.run([sys.executable, "-m", "provision", "validate", str(spec)],
                          capture_output=True, text=True, timeout=20)
    assert proc.returncode == 2
    assert not marker.exists()
    assert "unsupported YAML value" in proc.stderr


def test_missing_file_is_bad_input(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "provision", "validate",
                           str(tmp_path / "nope.yaml")], capture_output=True, text=True,
                          timeout=20)
    assert proc.returncode == 2
    assert "no such file" in proc.stderr and "Traceback" not in proc.stderr


def test_debug_shows_traceback(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("- x\n")
    proc = subprocess.run([sys.executable, "-m", "provision", "--debug", "validate", str(spec)],
                          capture_output=True, text=True, timeout=20)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr

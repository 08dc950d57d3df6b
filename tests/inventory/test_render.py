"""forge render: a standard Ansible inventory, deterministic, and careful with users' edits."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from provision.cli.main import main
from provision.inventory import render_inventory
from provision.spec import load_site

EXAMPLES = Path(__file__).resolve().parents[2] / "site-specs"

RENDERED = ["small", "medium", "large", "ovx-l40s", "roce", "lab"]
ANSIBLE_INVENTORY = shutil.which("ansible-inventory") or str(
    Path(__file__).resolve().parents[2] / ".venv" / "bin" / "ansible-inventory")


def render(name: str, out: Path) -> None:
    path = EXAMPLES / f"{name}.yaml"
    render_inventory(load_site(path), out, spec_text=path.read_text())


def ansible_inventory(inv: Path) -> dict:  # type: ignore[type-arg]
    proc = subprocess.run([ANSIBLE_INVENTORY, "-i", str(inv), "--list"], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "ANSIBLE_NOCOLOR": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" not in proc.stderr, proc.stderr
    data: dict = json.loads(proc.stdout)  # type: ignore[type-arg]
    return data


@pytest.mark.parametrize("name", RENDERED)
def test_ansible_inventory_reads_rendered_example(tmp_path: Path, name: str) -> None:
    render(name, tmp_path)
    site = load_site(EXAMPLES / f"{name}.yaml")
    data = ansible_inventory(tmp_path)
    hostvars = data["_meta"]["hostvars"]
    assert set(hostvars) == {n.name for n in site.nodes}
    controllers = {n.name for n in site.nodes if "controller" in n.roles}
    assert set(data["controller"]["hosts"]) == controllers
    compute = {n.name for n in site.nodes if "compute" in n.roles}
    assert set(data["compute"]["hosts"]) == compute
    assert set(data[f"stack_{site.stack.scheduler}"]["hosts"]) == {n.name for n in site.nodes}
    for node in site.nodes:
        hv = hostvars[node.name]
        assert hv["ansible_host"] == node.ssh_host and hv["ansible_port"] == node.ssh_port
        assert hv["forge_stack"] == site.stack.scheduler
        assert hv["forge_hw"]["memory_gib"] == node.profile.memory_gib
        assert [a["address"] for a in hv["forge_fabric_addresses"]] == [
            a.address for a in node.fabric_addresses]


def test_small_groups_by_rack_profile_and_gpu(tmp_path: Path) -> None:
    render("large", tmp_path)
    data = ansible_inventory(tmp_path)
    assert len(data["rack_r02"]["hosts"]) == 8
    assert len(data["profile_sr675v3_h100nvl_ib"]["hosts"]) == 16
    assert len(data["gpu_nodes"]["hosts"]) == 16
    assert len(data["fabric_infiniband"]["hosts"]) == 16
    assert data["_meta"]["hostvars"]["gpu001"]["forge_hw"]["gpu"]["nvlink_pairs"] == [
        [0, 1], [2, 3], [4, 5], [6, 7]]


def test_same_spec_byte_identical(tmp_path: Path) -> None:
    render("medium", tmp_path / "a")
    render("medium", tmp_path / "b")
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*")
                     if p.is_file())
    assert files_a == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*")
                             if p.is_file())
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


def test_user_edit_is_kept_and_reported_unless_force(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    spec = EXAMPLES / "small.yaml"
    main_args = ["render", str(spec), "-o", str(tmp_path)]
    with pytest.raises(SystemExit) as exc:
        main(main_args)
    assert exc.value.code in (0, None)
    edited = tmp_path / "host_vars" / "gpu001.yml"
    edited.write_text(edited.read_text() + "my_local_tweak: 1\n")
    foreign = tmp_path / "group_vars" / "all" / "forge.yml"
    original_all = foreign.read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(main_args)
    err = capsys.readouterr().err
    assert "kept: host_vars/gpu001.yml" in err
    assert "my_local_tweak: 1" in edited.read_text()
    assert foreign.read_text() == original_all
    with pytest.raises(SystemExit):
        main([*main_args, "--force"])
    assert "my_local_tweak" not in edited.read_text()


def test_file_forge_did_not_write_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "hosts.yml"
    target.write_text("# my own inventory\nall: {}\n")
    site = load_site(EXAMPLES / "small.yaml")
    report = render_inventory(site, tmp_path, spec_text="x")
    assert "hosts.yml" in report.kept
    assert target.read_text() == "# my own inventory\nall: {}\n"


def test_removed_node_file_is_removed_only_if_untouched(tmp_path: Path) -> None:
    large = load_site(EXAMPLES / "large.yaml")
    render_inventory(large, tmp_path)
    touched = tmp_path / "host_vars" / "gpu016.yml"
    touched.write_text(touched.read_text() + "# note\n")
    text = (EXAMPLES / "large.yaml").read_text().replace("gpu[001-016]", "gpu[001-014]").replace(
        'r02: "gpu[009-016]"', 'r02: "gpu[009-014]"').replace("size: large", "size: custom")
    text = text.replace("      gpu016: {management_ip: 10.40.1.16, serial: J9000016, macs: "
                        "{mgmt: \"7c:c2:55:01:16:01\"}}\n", "").replace("    node_data:\n", "")
    spec = tmp_path.parent / "large14.yaml"
    spec.write_text(text)
    report = render_inventory(load_site(spec), tmp_path)
    assert "host_vars/gpu015.yml" in report.removed
    assert "host_vars/gpu016.yml" in report.kept and touched.exists()
    assert not (tmp_path / "host_vars" / "gpu015.yml").exists()


def test_no_secret_values_in_inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGE_BMC_PASSWORD", "s3cr3t-Passw0rd")
    render("small", tmp_path)
    for p in tmp_path.rglob("*"):
        if p.is_file():
            assert "s3cr3t-Passw0rd" not in p.read_text()
    text = (tmp_path / "group_vars" / "all" / "forge.yml").read_text()
    assert "lookup('ansible.builtin.env', 'FORGE_BMC_PASSWORD')" in text


def test_gpudirect_mode_and_os_update_hold_reach_the_roles(tmp_path: Path) -> None:
    import yaml

    from provision.spec.loader import load_site_text

    text = (EXAMPLES / "small.yaml").read_text()
    render_inventory(load_site(EXAMPLES / "small.yaml"), tmp_path / "a", spec_text=text)
    default = yaml.safe_load((tmp_path / "a/group_vars/all/forge.yml").read_text())
    assert (default["forge_gpudirect_mode"], default["forge_hold_os_updates"]) == ("auto", True)
    changed = text.replace("stack:\n", "stack:\n  gpudirect_mode: peermem\n  hold_os_updates: false\n", 1)
    assert changed != text
    site = load_site_text(changed, "small.yaml", EXAMPLES)
    render_inventory(site, tmp_path / "b", spec_text=changed)
    got = yaml.safe_load((tmp_path / "b/group_vars/all/forge.yml").read_text())
    assert (got["forge_gpudirect_mode"], got["forge_hold_os_updates"]) == ("peermem", False)
    hv = yaml.safe_load((tmp_path / "b/group_vars/profile_sr675v3_h100nvl_ib/forge.yml").read_text())
    assert hv["forge_hw"]["gpu"]["gres_type"] == "h100_nvl"
    assert hv["forge_hw"]["gpu"]["cores"] == ["0-63"] * 4 + ["64-127"] * 4
    assert hv["forge_hw"]["cpu"]["threads_per_core"] == 2

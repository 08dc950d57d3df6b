"""Syntax and shape of the GPU, fabric, Kubernetes and acceptance-tool roles and
their playbooks: what every role promises (validation first, both OS families,
defaults merged with the user's dict, hosts as variables)."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

import pytest
import yaml

from provision import proc

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ROOT / "playbooks"
ROLES = ("nvidia_driver", "cuda", "doca_ofed", "gpudirect", "fabric_infiniband", "fabric_roce",
         "kubernetes", "acceptance_tools")
OWN_PLAYBOOKS = ("gpu.yml", "fabric.yml", "kubernetes.yml", "acceptance_tools.yml")
VENV_BIN = Path(sys.executable).parent


@pytest.mark.parametrize("playbook", OWN_PLAYBOOKS)
def test_playbook_syntax(playbook: str, tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
           "ANSIBLE_LOCAL_TEMP": str(tmp_path), "ANSIBLE_NOCOLOR": "1"}
    result = proc.run([str(VENV_BIN / "ansible-playbook"), "--syntax-check", "-i", "localhost,",
                       str(PLAYBOOKS / playbook)], timeout=120, env=env, cwd=str(tmp_path))
    assert result.ok, result.stdout + result.stderr


@pytest.mark.parametrize("playbook", OWN_PLAYBOOKS)
def test_plays_take_hosts_from_variables(playbook: str) -> None:
    for play in yaml.safe_load((PLAYBOOKS / playbook).read_text()):
        assert re.fullmatch(r"\{\{ \w+_hosts \| default\('[\w:]+'\) \}\}", play["hosts"]), play["hosts"]


def _tasks(role: str, name: str) -> list[dict]:
    return yaml.safe_load((PLAYBOOKS / "roles" / role / "tasks" / name).read_text())


@pytest.mark.parametrize("role", ROLES)
def test_role_validates_first(role: str) -> None:
    first = _tasks(role, "main.yml")[0]
    assert first.get("ansible.builtin.import_tasks") == "validate.yml"
    assert all("ansible.builtin.assert" in t for t in _tasks(role, "validate.yml"))


@pytest.mark.parametrize("role", ROLES)
def test_role_supports_both_families(role: str) -> None:
    for family in ("Debian", "RedHat"):
        assert (PLAYBOOKS / "roles" / role / "vars" / f"{family}.yml").is_file()


def _key_paths(value: object, prefix: str = "") -> set[str]:
    if not isinstance(value, dict):
        return {prefix}
    return {p for k, v in value.items() for p in _key_paths(v, f"{prefix}.{k}" if prefix else k)}


FAMILY_ROLES = sorted(p.parent.parent.name
                      for p in (PLAYBOOKS / "roles").glob("*/vars/Debian.yml"))


@pytest.mark.parametrize("role", FAMILY_ROLES)
def test_both_families_define_the_same_variables(role: str) -> None:
    """A RHEL node must not meet a variable that only the Debian file defines (or back):
    a variable of one family only is used only by that family's task files."""
    role_dir = PLAYBOOKS / "roles" / role
    paths = {family: _key_paths(yaml.safe_load(
        (role_dir / "vars" / f"{family}.yml").read_text()) or {})
        for family in ("Debian", "RedHat")}
    for family, other in (("Debian", "RedHat"), ("RedHat", "Debian")):
        for only in paths[family] - paths[other]:
            name = only.split(".")[0]
            if name in {p.split(".")[0] for p in paths[other]}:
                raise AssertionError(f"{only} is in vars/{family}.yml only")
            users = {f.name for f in (role_dir / "tasks").glob("*.yml")
                     if name in f.read_text()} | {
                     f.name for f in (role_dir / "templates").glob("*") if name in f.read_text()}
            assert users and all(u.endswith(f"_{family}.yml") for u in users), \
                f"{name} is in vars/{family}.yml only but used by {sorted(users)}"


@pytest.mark.parametrize("role", ROLES)
def test_role_merges_defaults_with_the_user_dict(role: str) -> None:
    defaults = yaml.safe_load((PLAYBOOKS / "roles" / role / "defaults" / "main.yml").read_text())
    assert isinstance(defaults[f"{role}_defaults"], dict)
    assert defaults[f"{role}_overrides"] == {}
    assert re.search(rf"{role}_defaults \| combine\(.*{role}_overrides, recursive=true\)",
                     defaults[f"{role}_settings"])


@pytest.mark.parametrize("role", ROLES)
def test_removed_variables_are_not_used_by_the_role(role: str) -> None:
    """A removed name that the role still defines would make validation reject every run."""
    base = PLAYBOOKS / "roles" / role
    role_vars = yaml.safe_load((base / "vars" / "main.yml").read_text())
    removed = role_vars.pop(f"{role}_removed_variables")
    texts = [yaml.safe_dump(role_vars)]
    texts += [p.read_text() for p in base.rglob("*.yml")
              if "molecule" not in p.parts and p != base / "vars" / "main.yml"]
    texts += [p.read_text() for p in base.rglob("*.j2")]
    text = "\n".join(texts)
    for entry in removed:
        assert re.search(rf"\b{entry['name']}\b", text) is None, entry["name"]
        assert entry["replacement"]


@pytest.mark.parametrize("role", ROLES)
def test_no_hard_coded_group_names(role: str) -> None:
    base = PLAYBOOKS / "roles" / role
    for path in [*base.glob("tasks/*.yml"), *base.rglob("templates/**/*.j2")]:
        assert re.search(r"groups\[\s*['\"]", path.read_text()) is None, path


def _nodeset_plugin():
    path = PLAYBOOKS / "roles" / "fabric_infiniband" / "filter_plugins" / "forge_nodeset.py"
    spec = importlib.util.spec_from_file_location("forge_nodeset", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_opensm_hosts_node_sets_expand() -> None:
    plugin = _nodeset_plugin()
    expand = plugin.FilterModule().filters()["forge_nodeset_expand"]
    assert expand("head01,gpu[001-003]") == ["gpu001", "gpu002", "gpu003", "head01"]   # ClusterShell sorts
    assert expand(None) == [] and expand("") == []
    # The fallback (no ClusterShell) reads the same syntax.
    parts = plugin._split_top("head01,gpu[001-002,009]")
    assert [h for p in parts for h in plugin._expand_one(p)] == ["head01", "gpu001", "gpu002", "gpu009"]


@pytest.mark.parametrize("tasks_file", ["nvidia_driver/tasks/packages_RedHat.yml",
                                        "slurm/tasks/main.yml"])
def test_epel_is_enabled_before_the_first_package_on_rhel(tasks_file: str) -> None:
    """dkms (for kmod-nvidia-*-dkms) and Slurm come from EPEL on RHEL 9; gpu.yml runs before
    slurm.yml and Kubernetes sites run no slurm role, so each role enables it itself, from the
    one task file common holds, before it installs anything."""
    tasks = yaml.safe_load((PLAYBOOKS / "roles" / tasks_file).read_text())
    installs = [i for i, t in enumerate(tasks)
                if {"ansible.builtin.dnf", "ansible.builtin.package"} & set(t)]
    epel = [i for i, t in enumerate(tasks)
            if t.get("ansible.builtin.include_role") == {"name": "common",
                                                         "tasks_from": "epel_RedHat.yml"}]
    assert installs and epel and epel[0] < installs[0], tasks_file
    assert (PLAYBOOKS / "roles" / "common" / "tasks" / "epel_RedHat.yml").is_file()
    assert "mirror" in str(tasks[epel[0]].get("when"))   # a mirror carries the packages


def test_gpu_compute_nodes_of_an_enroot_site_get_nvidia_container_cli() -> None:
    """enroot's 98-nvidia.sh fails a GPU container without nvidia-container-cli."""
    tasks = yaml.safe_load((PLAYBOOKS / "roles" / "slurm" / "tasks" / "containers.yml").read_text())
    (task,) = [t for t in tasks
               if t.get("ansible.builtin.package", {}).get("name") == "libnvidia-container-tools"]
    when = " ".join(task["when"])
    assert "containers == 'enroot'" in when and "slurm_is_compute" in when and ".gpu" in when
    enroot_conf = next(i for i, t in enumerate(tasks) if t["name"].endswith("enroot.conf"))
    assert tasks.index(task) < enroot_conf

"""Role arguments: each role's meta/argument_specs.yml against its defaults, the
inventory forge renders, and real ansible-core validation.

The Ansible runs apply every role with only ansible-core's argument validation
(``--tags`` that no task carries): that validation runs on the control host
before any task of the role, so a localhost run is the real check.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from provision import proc
from provision.inventory.write import render_inventory
from provision.spec.loader import load_site

from .conftest import HERE, PLAYBOOKS, VENV_BIN, ansible_env

ROOT = HERE.parents[1]
EXAMPLES = sorted((ROOT / "site-specs").glob("*.yaml"))
ROLES = sorted(p.name for p in (PLAYBOOKS / "roles").iterdir() if p.is_dir())

# Variables the inventory writes that no role declares, each with the reason.
NOT_ROLE_ARGUMENTS = {
    # A secret reference: declaring it would make role validation template the
    # lookup (read the secret) on every host. Only `forge bmc` reads it.
    "forge_bmc_credentials",
}

# Where a forge_* inventory variable comes from in the site spec (to tell a
# value the spec chose from a default the renderer wrote).
SPEC_PATH = {
    "forge_slurm": ("stack", "slurm"), "forge_kubernetes": ("stack", "kubernetes"),
    "forge_versions": ("stack", "versions"), "forge_fabric": ("networks", "fabric"),
    "forge_gpudirect_mode": ("stack", "gpudirect_mode"),
    "forge_hold_os_updates": ("stack", "hold_os_updates"),
    "forge_cluster_name": ("cluster", "name"),
}

# Role fallbacks that differ from the inventory on purpose, each with the reason.
# Under forge the inventory always writes the value, so only a role run
# without a forge inventory sees these.
UNPINNED_ALONE = {
    # Without a forge inventory the role installs no vendor RDMA stack (the
    # distribution's rdma-core); forge's version table pins DOCA-OFED.
    "doca_ofed_defaults.version",
    # "" = the newest in NVIDIA's repository; forge pins the version table's.
    "acceptance_tools_defaults.nccl_version",
    "acceptance_tools_defaults.dcgm_version",
}

# The inventory group a role's play targets, where defaults/main.yml names none.
ROLE_GROUPS = {"slurm": "stack_slurm", "common": "all"}


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _spec(role: str) -> dict[str, Any]:
    options: dict[str, Any] = _yaml(PLAYBOOKS / "roles" / role / "meta/argument_specs.yml")[
        "argument_specs"]["main"]["options"]
    return options


def _defaults(role: str) -> dict[str, Any]:
    path = PLAYBOOKS / "roles" / role / "defaults/main.yml"
    return (_yaml(path) or {}) if path.exists() else {}


def _declared_defaults(options: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted option path -> the default argument_specs states."""
    out: dict[str, Any] = {}
    for name, opt in options.items():
        if "default" in opt:
            out[prefix + name] = opt["default"]
        out.update(_declared_defaults(opt.get("options", {}), f"{prefix}{name}."))
    return out


@pytest.mark.parametrize("role", ROLES)
def test_every_role_has_argument_specs_with_types_and_descriptions(role: str) -> None:
    def walk(options: dict[str, Any], where: str) -> None:
        for name, opt in options.items():
            assert opt.get("type"), f"{role}: {where}{name} has no type"
            assert opt.get("description"), f"{role}: {where}{name} has no description"
            walk(opt.get("options", {}), f"{where}{name}.")
    options = _spec(role)
    assert options, role
    walk(options, "")


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_defaults_are_the_role_defaults(role: str) -> None:
    """A default in argument_specs is the one in defaults/main.yml (overrides: <role>_defaults)."""
    defaults = _defaults(role)
    flat = {**defaults, **{f"{role}_overrides.{k}": v
                           for k, v in _flat(defaults.get(f"{role}_defaults", {})).items()}}
    declared = _declared_defaults(_spec(role))
    assert declared, role
    for path, value in declared.items():
        if path == f"{role}_overrides":
            assert value == {}, path
            continue
        assert path in flat, f"{role}: argument_specs default for {path}, which defaults/main.yml lacks"
        assert value == flat[path], f"{role}: {path} is {value!r} in argument_specs, {flat[path]!r} in defaults"


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        out[prefix + k] = v
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
    return out


@pytest.mark.parametrize("role", ROLES)
def test_every_override_key_is_declared(role: str) -> None:
    """Each key of <role>_defaults is an option of <role>_overrides with the same type family."""
    defaults = _defaults(role).get(f"{role}_defaults")
    if defaults is None:
        pytest.skip(f"{role} has no settings dict")
    options = _spec(role)[f"{role}_overrides"]["options"]
    assert set(defaults) <= set(options), set(defaults) - set(options)


@pytest.fixture(scope="module")
def inventories(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("argspec-inventories")
    out = {}
    for spec in EXAMPLES:
        target = base / spec.stem
        render_inventory(load_site(spec), target, spec_text=spec.read_text())
        out[spec.stem] = target
    return out


def _inventory_vars(inventory: Path) -> dict[str, dict[str, Any]]:
    """File (relative) -> the variables it sets."""
    return {str(p.relative_to(inventory)): _yaml(p) or {}
            for p in sorted(inventory.glob("*_vars/**/*.yml"))}


def test_every_inventory_variable_is_declared_by_a_role(inventories: dict[str, Path]) -> None:
    """A variable forge render writes that no role declares is a typo or a dead variable."""
    declared = {name for role in ROLES for name in _spec(role)}
    undeclared = set()
    for name, inventory in inventories.items():
        for path, variables in _inventory_vars(inventory).items():
            for var in variables:
                if var.startswith("ansible_") or var in NOT_ROLE_ARGUMENTS:
                    continue   # Ansible's own connection variables
                if var not in declared:
                    undeclared.add(f"{name}/{path}: {var}")
    assert not undeclared, sorted(undeclared)


_FALLBACK = re.compile(r"^\{\{\s*(forge_\w+)((?:\.\w+)*)\s*\|\s*default\((.+?)\)\s*\}\}$")


def _role_fallbacks() -> list[tuple[str, str, str, Any]]:
    """(role, setting, inventory path, the value the role takes without an inventory).

    A setting defaults either through a template ``{{ forge_x.key | default(v) }}``
    or, for the dicts the role merges whole (forge_slurm over slurm_defaults,
    forge_fabric.roce over fabric_roce_defaults), by key.
    """
    merged = {"slurm": "forge_slurm", "fabric_roce": "forge_fabric.roce"}
    env = jinja2.Environment()
    out = []
    for role in ROLES:
        for setting, value in _flat(_defaults(role).get(f"{role}_defaults", {})).items():
            if isinstance(value, str) and (m := _FALLBACK.match(value.strip())):
                literal = env.from_string("{{ " + m.group(3) + " }}").render()
                typed = yaml.safe_load(literal) if literal else literal
                out.append((role, setting, m.group(1) + m.group(2), typed))
            elif role in merged and "{{" not in str(value):
                out.append((role, setting, f"{merged[role]}.{setting}", value))
    return out


def _lookup(variables: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = variables
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _applies(role: str, inventory: Path) -> bool:
    """Whether the role's play has hosts in this inventory (fabric_roce on an InfiniBand site has none)."""
    pattern = ROLE_GROUPS.get(role) or _defaults(role).get(f"{role}_hosts", "")
    children = _yaml(inventory / "hosts.yml")["all"].get("children") or {}
    return pattern == "all" or any((children.get(g) or {}).get("hosts") for g in pattern.split(":"))


def test_inventory_and_role_defaults_agree(inventories: dict[str, Path]) -> None:
    """Where the renderer writes a default a role also has, they are the same value."""
    fallbacks = [f for f in _role_fallbacks() if f"{f[0]}_defaults.{f[1]}" not in UNPINNED_ALONE]
    assert len(fallbacks) > 20, fallbacks   # the scan found the roles' fallbacks
    disagree, compared = [], 0
    for name, inventory in inventories.items():
        spec_doc = _yaml(ROOT / "site-specs" / f"{name}.yaml")
        everything: dict[str, Any] = {}
        for variables in _inventory_vars(inventory).values():
            everything.update(variables)
        for role, setting, dotted, role_value in fallbacks:
            found, value = _lookup(everything, dotted)
            if not found or value is None or not _applies(role, inventory):
                continue
            top = dotted.split(".")[0]
            if top == "forge_fabric_addresses":
                continue   # per node, allocated from the spec: no default
            if top in SPEC_PATH:
                spec_path = ".".join(SPEC_PATH[top] + tuple(dotted.split(".")[1:]))
                if _lookup(spec_doc, spec_path)[0]:
                    continue   # the site spec chose this value
            compared += 1
            if str(value) != str(role_value):
                disagree.append(f"{name}: {dotted} = {value!r} in the inventory, "
                                f"{role}_defaults.{setting} falls back to {role_value!r}")
    assert compared > 0
    assert not disagree, "\n".join(sorted(set(disagree)))


def _run(tmp: Path, inventory: Path | str, extra: dict[str, Any],
         limit: str | None = None) -> tuple[int, dict[str, Any], str]:
    argv = [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory),
            str(HERE / "argument_specs.yml"), "--tags", "forge-argument-specs-only",
            "-e", json.dumps({"ansible_python_interpreter": sys.executable, **extra})]
    if limit:
        argv += ["--limit", limit]
    env = {**ansible_env(tmp), "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
    result = proc.run(argv, timeout=300, env=env, cwd=str(tmp))
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        report = {}
    return result.returncode, report, result.stdout[-3000:] + result.stderr[-2000:]


def _one_host_per_profile(inventory: Path) -> str:
    hosts = _yaml(inventory / "hosts.yml")
    picked = set()

    def walk(group: dict[str, Any], name: str) -> None:
        if name.startswith("profile_") and group.get("hosts"):
            picked.add(sorted(group["hosts"])[0])
        for child, sub in (group.get("children") or {}).items():
            walk(sub or {}, child)
    walk(hosts["all"], "all")
    return ",".join(sorted(picked))


def test_every_example_inventory_passes_every_roles_argument_specs(
        inventories: dict[str, Path], tmp_path: Path) -> None:
    """What forge render writes is what the roles accept (types, choices, known keys)."""
    for name, inventory in inventories.items():
        rc, report, tail = _run(tmp_path, inventory, {}, limit=_one_host_per_profile(inventory))
        assert rc == 0, f"{name}: {tail}"
        validated = [h for play in report["plays"] for task in play["tasks"]
                     if "Validating arguments against arg spec 'main'" in task["task"]["name"]
                     for h in task["hosts"]]
        assert len(validated) >= len(ROLES), f"{name}: validation did not run for every role: {tail}"


# A value of the wrong type for one option of each role.
WRONG = {
    "hardware_facts": ("hardware_facts_gpu_classes", {"vga": "0x0300"}, "hardware_facts_gpu_classes"),
    "common": ("common_overrides", {"hugepages_2m": "lots"}, "hugepages_2m"),
    "doca_ofed": ("doca_ofed_overrides", {"restart_openibd": "maybe"}, "restart_openibd"),
    "fabric_infiniband": ("fabric_infiniband_overrides", {"link_wait_seconds": "long"}, "link_wait_seconds"),
    "fabric_roce": ("fabric_roce_overrides", {"pfc_priority": "three"}, "pfc_priority"),
    "nvidia_driver": ("nvidia_driver_overrides", {"reboot_throttle": "many"}, "reboot_throttle"),
    "cuda": ("cuda_overrides", {"require_gpu": "maybe"}, "require_gpu"),
    "gpudirect": ("gpudirect_overrides", {"strict": "maybe"}, "strict"),
    "slurm": ("slurm_overrides", {"slurmd_port": "six"}, "slurmd_port"),
    "kubernetes": ("kubernetes_overrides", {"gpu_operator": {"dcgm_exporter": "maybe"}}, "dcgm_exporter"),
    "acceptance_tools": ("acceptance_tools_overrides", {"cuda_architectures": "ninety"}, "cuda_architectures"),
    "health_sweep": ("health_sweep_overrides", {"drain": "maybe"}, "drain"),
}


def test_wrong_types_are_rejected_by_each_roles_argument_specs(tmp_path: Path) -> None:
    """One host per role, carrying a wrong-typed value for that role only: each stops
    at its own role's validation, naming the option, before any task of the role."""
    assert set(WRONG) == set(ROLES)
    lines = ["[controller]", "h-slurm", "[compute]", "h-slurm", "[all]"]
    host_vars = tmp_path / "host_vars"
    host_vars.mkdir()
    for role, (var, value, _) in WRONG.items():
        lines.append(f"h-{role}")
        (host_vars / f"h-{role}.yml").write_text(yaml.safe_dump({var: value}))
    (tmp_path / "hosts.ini").write_text("\n".join(lines) + "\n")
    rc, report, tail = _run(tmp_path, tmp_path / "hosts.ini", {})
    assert rc != 0, tail
    failures: dict[str, tuple[str, str]] = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            for host, res in task["hosts"].items():
                if res.get("failed"):
                    failures[host] = (task["task"]["name"], res.get("msg", ""))
    for role, (_, _, option) in WRONG.items():
        assert f"h-{role}" in failures, f"{role}: the wrong type passed: {tail}"
        task_name, msg = failures[f"h-{role}"]
        assert task_name.startswith(f"{role} : Validating arguments against arg spec 'main' - "), task_name
        spec_text = _yaml(PLAYBOOKS / "roles" / role / "meta/argument_specs.yml")
        assert spec_text["argument_specs"]["main"]["short_description"] in task_name
        assert "Validation of arguments failed" in msg and option in msg, f"{role}: {msg}"


def test_docs_settings_tables_are_generated_from_the_specs() -> None:
    result = proc.run([sys.executable, str(ROOT / "scripts" / "role_settings_tables.py"), "--check"],
                      timeout=60)
    assert result.ok, result.stdout

"""Fixtures of the role tests: inventories rendered by forge, manifests rendered by Ansible."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from lab.labkit import podman_usable

from provision import proc
from provision.inventory.write import render_inventory
from provision.lab.config import DEFAULT_IMAGE
from provision.lab.image import build_image
from provision.spec.loader import load_site

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PLAYBOOKS = ROOT / "playbooks"
VENV_BIN = Path(sys.executable).parent

# Variants rendered from each site spec: name -> role overrides (and, for the
# last one, a variable the role no longer reads).
VARIANTS: dict[str, list[dict[str, object]]] = {
    "k8s-ib": [
        {"name": "default", "overrides": {}},
        {"name": "ipoib", "overrides": {"network_operator": {"mode": "ipoib", "ipam": "nv-ipam"}}},
        {"name": "broken", "overrides": {
            "network_operator": {"component_version": 26, "ipam": "dhcp"},
            "gpu_operator": {"values": {"drvier": {"enabled": False},
                                        "toolkit": {"enabled": "yes"}}}}},
        {"name": "removed", "overrides": {}, "removed_variable": "kubernetes_version"},
    ],
    "k8s-roce": [
        {"name": "mirror", "overrides": {}},
    ],
}


def ansible_env(tmp: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
        "ANSIBLE_ROLES_PATH": str(PLAYBOOKS / "roles"),
        "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
    }


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """site name -> directory holding one sub-directory of rendered files per variant."""
    base = tmp_path_factory.mktemp("k8s-render")
    out: dict[str, Path] = {}
    for site_name, variants in VARIANTS.items():
        spec = HERE / "fixtures" / f"{site_name}.yaml"
        inventory = base / f"inventory-{site_name}"
        render_inventory(load_site(spec), inventory, spec_text=spec.read_text())
        target = base / site_name
        target.mkdir()
        extra = {"forge_test_out": str(target), "forge_test_variants": variants,
                 "ansible_python_interpreter": sys.executable}
        result = proc.run(
            [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory),
             str(HERE / "render_manifests.yml"), "-e", json.dumps(extra)],
            timeout=300, env=ansible_env(base), cwd=str(base))
        assert result.ok, f"rendering {site_name} failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
        out[site_name] = target
    return out


@pytest.fixture(scope="session")
def podman_ready() -> str:
    """The lab image name (built when missing), or skip where podman cannot run."""
    image = os.environ.get("FORGE_LAB_IMAGE", DEFAULT_IMAGE)
    if not podman_usable():
        pytest.skip("podman with runc cannot run here (apt-get install podman runc mmdebstrap)")
    build_image(image)   # no-op when it exists (the lab tests usually built it already)
    return image

"""The slurm role's container inputs (enroot + pyxis, Apptainer), judged by the
role's own validation in a real Ansible run on the control host: unpinned files
and, on a mirror site, any file from outside the mirror stop the deploy with the
variable to set."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from provision import proc

from .conftest import HERE, VENV_BIN, ansible_env

SHA = "sha256:" + "ab" * 32
MIRROR = "http://mirror.site.internal/forge-files"
ENROOT_FROM_MIRROR = [{"url": f"{MIRROR}/enroot_3.5.0-1_amd64.deb", "checksum": SHA},
                      {"url": f"{MIRROR}/enroot+caps_3.5.0-1_amd64.deb", "checksum": SHA}]
GITHUB = "https://github.com/NVIDIA/enroot/releases/download/v3.5.0/enroot_3.5.0-1_amd64.deb"


def _validate(tmp_path: Path, os_key: str | None = "Debian 13",
              **extra: object) -> tuple[bool, str]:
    """The role's validation on this host; its OS counts as ``os_key`` (None: its own facts)."""
    if os_key is not None:
        extra = {"slurm_os_key": os_key, **extra}
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[controller]\nlocalhost\n[compute]\nlocalhost\n[all:vars]\n"
                         f"ansible_connection=local\nansible_python_interpreter={sys.executable}\n")
    result = proc.run([str(VENV_BIN / "ansible-playbook"), "-i", str(inventory),
                       str(HERE / "slurm_validate.yml"), "-e", json.dumps(extra)],
                      timeout=180, env=ansible_env(tmp_path), cwd=str(tmp_path))
    return result.ok, result.stdout + result.stderr


def _containers(kind: str) -> dict[str, object]:
    return {"forge_slurm": {"containers": kind}}


MIRROR_SITE = {"forge_package_sources": {"mode": "mirror", "files": MIRROR + "/"}}


@pytest.mark.parametrize(("extra", "message"), [
    pytest.param(_containers("enroot"), "set slurm_enroot_packages", id="enroot-without-packages"),
    pytest.param({**_containers("apptainer"), "slurm_apptainer_packages": [{"url": GITHUB}]},
                 "set slurm_apptainer_packages", id="package-without-checksum"),
    pytest.param({**_containers("enroot"), "slurm_enroot_packages": ENROOT_FROM_MIRROR},
                 'stack.checksums.pyxis["0.20.0"]', id="pyxis-unpinned"),
    pytest.param({**_containers("enroot"), **MIRROR_SITE, "forge_checksums": {"pyxis": {"0.20.0": SHA}},
                  "slurm_enroot_packages": [*ENROOT_FROM_MIRROR, {"url": GITHUB, "checksum": SHA}]},
                 f"outside it: {GITHUB}", id="mirror-site-public-url"),
    pytest.param({**_containers("apptainer"), "forge_package_sources": {"mode": "mirror"},
                  "slurm_apptainer_packages": ENROOT_FROM_MIRROR},
                 "forge_package_sources.files is empty", id="mirror-site-without-files"),
    pytest.param({"os_key": "Ubuntu 22.04"},
                 "Ubuntu 22.04 packages Slurm 21.08, and forge needs 23.11 or newer", id="jammy"),
    pytest.param({"forge_versions": {"slurm": "24.05"}},
                 "Debian 13 packages Slurm 24.11, and stack.versions.slurm asks for 24.05",
                 id="spec-asks-for-another-release"),
    pytest.param({"forge_versions": {"slurm": "22.05"}, "forge_slurm": {"repository": "site"}},
                 "stack.versions.slurm is 22.05; forge needs 23.11", id="too-old-even-from-a-repo"),
])
def test_bad_inputs_stop_with_the_variable_to_set(tmp_path: Path, extra: dict,
                                                  message: str) -> None:
    """Container files unpinned or off the mirror, a Slurm the OS cannot give."""
    ok, output = _validate(tmp_path, **extra)
    assert not ok, output[-3000:]
    assert message in output, output[-3000:]


def test_mirror_site_takes_pyxis_from_the_mirror(tmp_path: Path) -> None:
    ok, output = _validate(tmp_path, **_containers("enroot"), **MIRROR_SITE,
                           forge_checksums={"pyxis": {"0.20.0": SHA}},
                           slurm_enroot_packages=ENROOT_FROM_MIRROR)
    assert ok, output[-3000:]
    assert f"PYXIS_URL={MIRROR}/pyxis-v0.20.0.tar.gz" in output


def test_public_site_takes_pyxis_from_its_release_archive(tmp_path: Path) -> None:
    ok, output = _validate(tmp_path, **_containers("enroot"), forge_versions={"pyxis": "0.21.0"},
                           forge_checksums={"pyxis": {"0.21.0": SHA}},
                           slurm_enroot_packages=[{"url": GITHUB, "checksum": SHA}])
    assert ok, output[-3000:]
    assert "PYXIS_URL=https://github.com/NVIDIA/pyxis/archive/refs/tags/v0.21.0.tar.gz" in output


def test_this_hosts_own_os_release_is_judged_by_its_facts(tmp_path: Path) -> None:
    """No override: the control host's real facts pick the table entry (or none)."""
    facts = proc.run(["sh", "-c", ". /etc/os-release && echo $ID $VERSION_ID"], timeout=10)
    ok, output = _validate(tmp_path, os_key=None)
    if facts.stdout.strip() == "debian 12":
        assert not ok and "Debian 12 packages Slurm 22.05" in output, output[-3000:]
    else:
        assert "forge needs" not in output or not ok


@pytest.mark.parametrize("extra", [
    pytest.param({"forge_versions": {"slurm": "24.11"}}, id="debian13-24.11"),
    pytest.param({"os_key": "Ubuntu 22.04", "forge_slurm": {"repository": "site"},
                  "forge_versions": {"slurm": "24.11"}}, id="jammy-with-a-site-repository"),
])
def test_supported_slurm_passes_validation(tmp_path: Path, extra: dict) -> None:
    ok, output = _validate(tmp_path, **extra)
    assert ok, output[-3000:]


def test_partition_defaults_to_the_inventorys_and_overrides_win(tmp_path: Path) -> None:
    """slurm_defaults < forge_slurm (the site spec) < slurm_overrides; the role alone says gpu,
    as forge render does."""
    ok, output = _validate(tmp_path)
    assert ok and "PARTITION=gpu;" in output, output[-3000:]
    ok, output = _validate(tmp_path, forge_slurm={"partition": "spec"}, slurm_overrides={"partition": "mine"})
    assert ok and "PARTITION=mine;" in output, output[-3000:]


def test_the_old_input_name_still_works_with_a_deprecation(tmp_path: Path) -> None:
    """slurm_settings was the input before it became the merged result (set in the
    inventory, where users set it; an extra var would outrank the role's own merge)."""
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text('slurm_settings: {partition: legacy}\n')
    ok, output = _validate(tmp_path)
    assert ok and "PARTITION=legacy;" in output, output[-3000:]
    assert "DEPRECATED: slurm_settings is now the merged result; rename your slurm_settings" in output


def test_each_failed_condition_has_its_own_message(tmp_path: Path) -> None:
    ok, output = _validate(tmp_path, slurm_overrides={"partition": "two words"})
    assert not ok
    assert "slurm: slurm_settings.partition must be a plain name" in output, output[-3000:]
    assert "realmemory_fraction" not in output and "containers must be" not in output

"""forge as a package: the built wheel, installed into a fresh virtual environment, works
from any directory: --version, demo --no-lab, render, deploy --check against an unreachable
host (exit 4) and check --list. Also: the wheel carries every asset provision.paths names,
and the Ansible collections the roles use are installed with forge's runtime dependencies."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from provision import paths

ROOT = Path(__file__).resolve().parents[2]


def _collections_used() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "playbooks").rglob("*.yml"):
        if "molecule" in path.parts:
            continue
        for m in re.finditer(r"\b([a-z_]+)\.([a-z_]+)\.[a-z_]+\b", path.read_text()):
            if m[1] != "ansible" or m[2] != "builtin":
                names.add(f"{m[1]}.{m[2]}")
    return {n for n in names if n.split(".")[0] in ("community", "ansible", "kubernetes",
                                                     "containers")}


def test_every_collection_the_roles_use_is_installed() -> None:
    import ansible_collections

    base = Path(next(iter(ansible_collections.__path__)))
    used = _collections_used()
    assert "community.general" in used
    missing = [c for c in sorted(used) if not (base / c.replace(".", "/")).is_dir()]
    assert missing == [], f"collections the roles use but forge does not install: {missing}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out),
                    str(ROOT)], check=True, timeout=600)
    return next(out.glob("forge_provision-*.whl"))


def test_wheel_carries_the_assets(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for rel in (*paths.ASSETS, paths.MARKER, "playbooks/site.yml",
                "site-specs/small.yaml"):
        assert any(n.startswith(f"provision/_assets/{rel}") for n in names), rel
    assert not any("/molecule/" in n for n in names)


def _spec_unreachable(tmp: Path) -> Path:
    doc = yaml.safe_load((ROOT / "site-specs" / "lab.yaml").read_text())
    key, known = tmp / "key", tmp / "known_hosts"
    key.write_text("x\n")
    key.chmod(0o600)
    known.write_text("")
    doc["access"] = {"user": "root", "ssh_key": str(key), "known_hosts": str(known)}
    doc["node_groups"] = doc["node_groups"][:1]
    doc["node_groups"][0]["addresses"]["ssh"] = "127.0.0.1:9"  # discard: nothing listens
    spec = tmp / "site.yaml"
    spec.write_text(yaml.safe_dump(doc))
    return spec


@pytest.mark.slow
def test_installed_wheel_works_from_any_directory(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True,
                   timeout=900)
    forge = str(venv / "bin" / "forge")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([forge, *args], cwd=elsewhere, capture_output=True, text=True,
                              timeout=300, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})

    assert run("--version").stdout.startswith("forge, version")
    demo = run("demo", "--no-lab", "--workdir", "demo")
    assert demo.returncode == 0, demo.stderr
    assert (elsewhere / "demo" / "inventory" / "hosts.yml").is_file()
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "from provision.paths import examples_dir; print(examples_dir())"],
                           capture_output=True, text=True, cwd=elsewhere, check=True)
    installed_small = Path(where.stdout.strip()) / "small.yaml"
    assert "site-packages" in str(installed_small) and installed_small.is_file()
    render = run("render", str(installed_small), "-o", "inv")
    assert render.returncode == 0, render.stderr
    deploy = run("deploy", str(_spec_unreachable(tmp_path)), "--check", "--runs-dir", "runs")
    assert deploy.returncode == 4, deploy.stdout + deploy.stderr
    assert "unreachable" in deploy.stderr and "Traceback" not in deploy.stderr
    listing = run("check", "--list")
    assert listing.returncode == 0 and "conformance" in listing.stdout
    home = run("--home", str(tmp_path / "nowhere"), "render", str(installed_small), "-o", "x")
    assert home.returncode == 2 and "not a forge home" in home.stderr

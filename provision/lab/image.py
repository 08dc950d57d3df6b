"""The lab node image: a Debian 13 root filesystem imported into podman.

mmdebstrap builds it in about 20 s; debootstrap (slower) is the fallback.
The image carries no SSH key and no host keys: ``forge lab up`` injects the
lab's key, and a one-shot unit generates unique host keys on each node's
first boot, so host-key checking stays on and means something.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from provision import proc
from provision.errors import ForgeError
from provision.lab import podman
from provision.lab.config import BASE_PACKAGES, SLURM_PACKAGES, SUITE

FALLBACK_MIRROR = "http://deb.debian.org/debian"
BUILD_TIMEOUT_S = 900

HOSTKEY_UNIT = """\
[Unit]
Description=Generate this node's SSH host keys on first boot (forge lab)
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
"""


class ImageBuildError(ForgeError):
    """The node image could not be built (environment problem, not bad input)."""


def debian_mirror(sources_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this host's apt uses (so the lab builds from what is reachable).

    Any suite's archive URI will do (the same archive serves every release); the
    security archive is a different tree and is skipped.
    """
    candidates = sorted((sources_dir / "sources.list.d").glob("*.sources"))
    for path in candidates:
        uri = _deb822_debian_uri(path.read_text(encoding="utf-8", errors="replace"))
        if uri:
            return uri
    legacy = sources_dir / "sources.list"
    if legacy.exists():
        for line in legacy.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and "security" not in line:
                return parts[1] if not parts[1].startswith("[") else parts[2]
    return FALLBACK_MIRROR


def _deb822_debian_uri(text: str) -> str | None:
    for stanza in text.split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if ":" in line and not line.startswith(("#", " ")):
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
        suites = fields.get("suites", "").split()
        if suites and not any("security" in x for x in suites) and fields.get("uris"):
            return fields["uris"].split()[0]
    return None


def mmdebstrap_argv(packages: tuple[str, ...], mirror: str, unit_file: Path,
                    out: Path) -> list[str]:
    unit = "/etc/systemd/system/forge-lab-hostkeys.service"
    return [
        "mmdebstrap", "--variant=apt", "--skip=cleanup/apt/lists", "--format=tar",
        "--include=" + ",".join(packages),
        f"--customize-hook=upload {unit_file} {unit}",
        '--customize-hook=ln -sf ' + unit
        + ' "$1/etc/systemd/system/multi-user.target.wants/forge-lab-hostkeys.service"',
        '--customize-hook=rm -f "$1"/etc/ssh/ssh_host_*; : > "$1/etc/machine-id"',
        '--customize-hook=install -d -m700 "$1/root/.ssh"',
        SUITE, str(out), mirror,
    ]


def debootstrap_argv(packages: tuple[str, ...], mirror: str, root: Path) -> list[str]:
    return ["debootstrap", "--variant=minbase", "--include=" + ",".join(packages),
            SUITE, str(root), mirror]


def import_argv(source: str, image: str) -> list[str]:
    return [podman.PODMAN, "import", "--quiet", "--change", 'CMD ["/sbin/init"]', source, image]


def image_exists(image: str) -> bool:
    return proc.run(podman.image_exists(image), timeout=30).ok


def packages_for(image: str) -> tuple[str, ...]:
    """The base image has no Slurm (the air-gapped test installs it from a mirror)."""
    from provision.lab.config import BASE_IMAGE
    return BASE_PACKAGES if image == BASE_IMAGE else BASE_PACKAGES + SLURM_PACKAGES


def build_image(image: str, *, log: Callable[[str], None] = lambda _m: None,
                force: bool = False) -> bool:
    """Build ``image`` unless it exists; returns True when a build ran."""
    if not force and image_exists(image):
        return False
    packages = packages_for(image)
    mirror = debian_mirror()
    with tempfile.TemporaryDirectory(prefix="forge-lab-image-", dir="/var/tmp") as tmp:
        tmpdir = Path(tmp)
        unit = tmpdir / "forge-lab-hostkeys.service"
        unit.write_text(HOSTKEY_UNIT, encoding="utf-8")
        if shutil.which("mmdebstrap"):
            log(f"building {image} with mmdebstrap from {mirror}")
            tar = tmpdir / "rootfs.tar"
            _check(proc.run(mmdebstrap_argv(packages, mirror, unit, tar), timeout=BUILD_TIMEOUT_S))
            _check(proc.run(import_argv(str(tar), image), timeout=300))
        elif shutil.which("debootstrap"):
            log(f"building {image} with debootstrap from {mirror} (mmdebstrap not installed)")
            root = tmpdir / "root"
            _check(proc.run(debootstrap_argv(packages, mirror, root), timeout=BUILD_TIMEOUT_S))
            _finish_debootstrap_root(root)
            tar = tmpdir / "rootfs.tar"
            _check(proc.run(["tar", "-C", str(root), "-cf", str(tar), "."], timeout=300))
            _check(proc.run(import_argv(str(tar), image), timeout=300))
        else:
            raise ImageBuildError("neither mmdebstrap nor debootstrap is installed",
                                  hint="apt-get install mmdebstrap (or run scripts/system-deps.sh)")
    return True


def _finish_debootstrap_root(root: Path) -> None:
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/machine-id").write_text("", encoding="utf-8")
    (root / "root/.ssh").mkdir(mode=0o700, exist_ok=True)
    unit = root / "etc/systemd/system/forge-lab-hostkeys.service"
    unit.write_text(HOSTKEY_UNIT, encoding="utf-8")
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / "forge-lab-hostkeys.service"
    if not link.is_symlink():
        link.symlink_to("/etc/systemd/system/forge-lab-hostkeys.service")


def _check(result: proc.Completed) -> None:
    if not result.ok:
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise ImageBuildError(
            f"{result.argv[0]} failed (exit {result.returncode}): " + " | ".join(tail),
            hint="the lab image is built from the Debian mirror this host's apt uses")

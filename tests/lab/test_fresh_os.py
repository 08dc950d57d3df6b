"""A fresh machine: scripts/system-deps.sh, run inside bare Debian 12 and Debian 13
containers (built here with mmdebstrap from Debian's mirror), installs every program the
lab calls; the check is provision.lab.prereqs' own table, so `forge lab up` and this test
agree on what "everything" is.

The containers and images carry this test's own names (never the lab's `lab-n*`), and only
they are removed."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from lab.labkit import podman_usable
from provision.lab import prereqs
from provision.lab.image import debian_mirror

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "system-deps.sh"
IMAGE = "localhost/forge-fresh-os:{suite}"   # kept between runs: the bare OS is the cache

pytestmark = [pytest.mark.lab, pytest.mark.slow]


# explicit ulimits: podman's default nofile exceeds the hard limit of sandboxed hosts
RUN = ("--runtime", "runc", "run", "--rm", "--ulimit", "nofile=10000:10000",
       "--ulimit", "nproc=10000:10000")


def _podman(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)


def _bare_image(suite: str) -> str:
    image = IMAGE.format(suite=suite)
    if _podman("image", "exists", image).returncode == 0:
        return image
    with tempfile.TemporaryDirectory(prefix="forge-fresh-", dir="/var/tmp") as tmp:
        tar = Path(tmp) / "rootfs.tar"
        build = subprocess.run(
            ["mmdebstrap", "--variant=minbase", "--format=tar", suite, str(tar),
             f"deb {debian_mirror()} {suite} main"],
            capture_output=True, text=True, timeout=1200)
        if build.returncode != 0:
            pytest.skip(f"cannot build a bare {suite} here: {build.stderr.strip()[-300:]}")
        imported = _podman("import", "--quiet", str(tar), image)
        assert imported.returncode == 0, imported.stderr
    return image


@pytest.mark.parametrize("suite", ["bookworm", "trixie"])
def test_system_deps_installs_everything_the_lab_calls(suite: str, tmp_path: Path) -> None:
    if not podman_usable() or shutil.which("mmdebstrap") is None:
        pytest.skip("needs podman, runc and mmdebstrap (scripts/system-deps.sh)")
    image = _bare_image(suite)
    check = tmp_path / "check.sh"
    check.write_text(prereqs.shell_check())
    before = _bare_check(image, check)
    assert "missing: podman" in before, f"the bare image must lack the lab's programs: {before}"
    name = f"forge-fresh-{suite}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        run = _podman(*RUN, "--name", name, "-v", f"{SCRIPT}:/deps.sh:ro",
                      "-v", f"{check}:/check.sh:ro", image,
                      "bash", "-c", "bash /deps.sh lab && sh /check.sh", timeout=1800)
    finally:
        _podman("rm", "--force", "--ignore", name, timeout=60)
    assert run.returncode == 0, f"{suite}: {run.stdout[-2000:]} {run.stderr[-2000:]}"


def _bare_check(image: str, check: Path) -> str:
    name = f"forge-fresh-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        run = _podman(*RUN, "--name", name, "-v", f"{check}:/check.sh:ro", image, "sh",
                      "/check.sh", timeout=120)
    finally:
        _podman("rm", "--force", "--ignore", name, timeout=60)
    return run.stdout

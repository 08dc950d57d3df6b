"""A local, signed apt mirror for the air-gapped path, served from a container inside the lab.

``collect`` downloads a package set and everything it depends on (as a node
built from the lab's base image would need it), ``build`` lays out a real
Debian repository (``dists/<suite>/main/binary-amd64``, a Release file
signed with a lab-only key) and ``serve`` runs ``python3 -m http.server``
in a container on the lab network, so the nodes reach it and nothing else.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import time
from pathlib import Path

from provision import proc
from provision.errors import ForgeError
from provision.lab import podman
from provision.lab.config import BASE_IMAGE, SUITE, LabConfig

SUITES = (SUITE, f"{SUITE}-updates")   # what the common role lists for a Debian mirror
PORT = 8080


class MirrorError(ForgeError):
    """The local mirror could not be built or served."""


def _must(result: proc.Completed, what: str) -> proc.Completed:
    if not result.ok:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise MirrorError(f"{what} failed (exit {result.returncode}): " + " | ".join(tail))
    return result


def collect(packages: list[str], debs: Path, *, image: str = BASE_IMAGE) -> list[Path]:
    """Download ``packages`` and their dependencies missing from ``image`` into ``debs``."""
    debs.mkdir(parents=True, exist_ok=True)
    script = ("apt-get update -qq && apt-get install -y -qq --download-only "
              "--no-install-recommends -o Dir::Cache::archives=/out " + " ".join(packages))
    _must(proc.run([podman.PODMAN, "--runtime", "runc", "run", "--rm",
                    "--ulimit", "nofile=10000:10000", "--ulimit", "nproc=10000:10000",
                    "--volume", f"{debs}:/out", image, "sh", "-c", script], timeout=900),
          "downloading packages for the mirror")
    return sorted(debs.glob("*.deb"))


def _gpg(home: Path, *args: str, input_text: str | None = None) -> proc.Completed:
    return _must(proc.run(["gpg", "--homedir", str(home), "--batch", "--yes", *args],
                          timeout=120, input_text=input_text), "gpg " + args[0])


def release_text(repo: Path, suite: str, indexes: list[Path]) -> str:
    """A Release file for ``suite`` listing ``indexes`` (paths under dists/<suite>)."""
    base = repo / "dists" / suite
    lines = ["Origin: forge-lab", "Label: forge-lab", f"Suite: {suite}", f"Codename: {suite}",
             "Architectures: amd64", "Components: main",
             "Date: " + time.strftime("%a, %d %b %Y %H:%M:%S UTC", time.gmtime())]
    for title, algo in (("MD5Sum", "md5"), ("SHA256", "sha256")):
        lines.append(f"{title}:")
        for index in indexes:
            data = index.read_bytes()
            lines.append(f" {hashlib.new(algo, data).hexdigest()} {len(data)} "
                         f"{index.relative_to(base)}")
    return "\n".join(lines) + "\n"


def build(debs: list[Path], repo: Path, gnupg_home: Path) -> Path:
    """Lay out and sign the repository; returns the public keyring for the nodes' signed-by."""
    pool = repo / "pool" / "main"
    pool.mkdir(parents=True, exist_ok=True)
    for deb in debs:
        shutil.copy2(deb, pool / deb.name)
    packages = _must(proc.run(["dpkg-scanpackages", "--multiversion", "pool"], timeout=300,
                              cwd=str(repo)), "dpkg-scanpackages").stdout
    gnupg_home.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not (gnupg_home / "pubring.kbx").exists():
        _gpg(gnupg_home, "--passphrase", "", "--quick-gen-key", "forge lab mirror",
             "ed25519", "sign", "never")
    for suite in SUITES:
        bindir = repo / "dists" / suite / "main" / "binary-amd64"
        bindir.mkdir(parents=True, exist_ok=True)
        text = packages if suite == SUITE else ""
        (bindir / "Packages").write_text(text, encoding="utf-8")
        (bindir / "Packages.gz").write_bytes(gzip.compress(text.encode(), mtime=0))
        release = repo / "dists" / suite / "Release"
        release.write_text(release_text(repo, suite, [bindir / "Packages",
                                                      bindir / "Packages.gz"]),
                           encoding="utf-8")
        _gpg(gnupg_home, "--clearsign", "--output", str(release.with_name("InRelease")),
             str(release))
    keyring = repo.parent / "mirror-keyring.gpg"
    _gpg(gnupg_home, "--output", str(keyring), "--export", "forge lab mirror")
    return keyring


def mirror_address(cfg: LabConfig) -> str:
    """Host number 9 of the lab subnet, just below the nodes (10 + i)."""
    return cfg.address(-1)


def mirror_url(cfg: LabConfig) -> str:
    return f"http://{mirror_address(cfg)}:{PORT}/"


def serve(cfg: LabConfig, repo: Path, *, image: str = BASE_IMAGE) -> str:
    """Run the mirror container on the lab network; returns the URL the nodes use."""
    name = f"{cfg.prefix}mirror"
    address = mirror_address(cfg)
    _must(proc.run(podman.rm([name]), timeout=60), "removing an old mirror container")
    _must(proc.run([podman.PODMAN, "--runtime", "runc", "run", "--detach", "--name", name,
                    "--label", f"{podman.LABEL}={cfg.prefix}mirror",
                    "--label", f"{podman.OWNER}={cfg.owner}",
                    "--network", cfg.network, "--ip", address,
                    "--ulimit", "nofile=10000:10000", "--ulimit", "nproc=10000:10000",
                    "--volume", f"{repo}:/srv/mirror:ro", image,
                    "python3", "-m", "http.server", str(PORT), "--directory", "/srv/mirror"],
                   timeout=120), "starting the mirror container")
    url = mirror_url(cfg)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        probe = proc.run(podman.exec_(name, "python3", "-c",
                                      f"import urllib.request; urllib.request.urlopen("
                                      f"'http://127.0.0.1:{PORT}/dists/{SUITE}/InRelease')"),
                         timeout=15)
        if probe.ok:
            return url
        time.sleep(0.3)
    raise MirrorError(f"the mirror in {name} did not answer on port {PORT}")


def stop(cfg: LabConfig) -> None:
    proc.run(podman.rm([f"{cfg.prefix}mirror"]), timeout=60)

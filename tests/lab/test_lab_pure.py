"""Pure parts of the lab: configuration, podman argv, the generated spec, image inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.errors import InputError
from provision.lab import image, keys, podman, sitespec
from provision.lab.config import LabConfig, from_env
from provision.spec import load_site
from provision.spec.model import Site


def test_from_env_isolates_a_second_lab(tmp_path: Path) -> None:
    cfg = from_env({"FORGE_LAB_DIR": str(tmp_path), "FORGE_LAB_PREFIX": "t-n",
                    "FORGE_LAB_SSH_PORT_BASE": "2400", "FORGE_LAB_SUBNET": "10.89.70.0/24"},
                   nodes=4)
    assert cfg.node_names == ["t-n1", "t-n2", "t-n3", "t-n4"]
    assert cfg.network == "t-n-net"
    assert cfg.ssh_port(4) == 2404 and cfg.address(4) == "10.89.70.14"
    assert cfg.ssh_key == tmp_path / "id_ed25519"


@pytest.mark.parametrize("kwargs, field", [
    ({"nodes": 0}, "--nodes"), ({"nodes": 99}, "--nodes"),
    ({"ssh_port_base": 80}, "port base"), ({"subnet": "10.0.0.0/30"}, "too small"),
    ({"subnet": "nope"}, "lab subnet"),
])
def test_bad_lab_settings_name_the_field(tmp_path: Path, kwargs: dict, field: str) -> None:
    with pytest.raises(InputError, match=field):
        LabConfig(state_dir=tmp_path, **kwargs)
    with pytest.raises(InputError, match="FORGE_LAB_SSH_PORT_BASE"):
        from_env({"FORGE_LAB_DIR": str(tmp_path), "FORGE_LAB_SSH_PORT_BASE": "x"})


def test_run_node_argv(tmp_path: Path) -> None:
    cfg = LabConfig(state_dir=tmp_path)
    argv = podman.run_node(cfg, 2)
    assert argv[:4] == ["podman", "--runtime", "runc", "run"]
    joined = " ".join(argv)
    for part in ("--name lab-n2", "--hostname lab-n2", "--network forge-lab-net",
                 "--ip 10.89.0.12", "--publish 127.0.0.1:2202:22",
                 "--ulimit nofile=10000:10000", "--ulimit nproc=10000:10000", "--systemd=always",
                 "--device /dev/null:/dev/lab-fake-gpu0", "--device /dev/null:/dev/lab-fake-gpu1"):
        assert part in joined
    assert argv[-2:] == [cfg.image, "/sbin/init"]
    assert podman.rm(["a", "b"]) == ["podman", "rm", "--force", "--ignore", "--time", "2", "a", "b"]


def test_generated_spec_is_a_valid_site(tmp_path: Path) -> None:
    cfg = LabConfig(state_dir=tmp_path, prefix="t-n", nodes=5, ssh_port_base=2400,
                    subnet="10.89.70.0/24")
    path = sitespec.write(cfg)
    assert path == cfg.spec_path
    site = load_site(path)
    assert [n.name for n in site.nodes] == cfg.node_names
    assert [n.ssh_port for n in site.nodes] == [2401, 2402, 2403, 2404, 2405]
    assert [n.management_ip for n in site.nodes] == [cfg.address(i) for i in range(1, 6)]
    assert site.with_role("controller")[0].name == "t-n1"
    assert all(n.profile.container and n.profile.fake_gpus == 2 for n in site.nodes)
    mirrored = load_site_text_of(sitespec.render(cfg, mirror_url="http://10.89.70.9:8080/"),
                                 tmp_path)
    assert mirrored.stack.sources.mode == "mirror"
    assert dict(mirrored.stack.sources.urls)["apt_mirror"] == "http://10.89.70.9:8080/"


def load_site_text_of(text: str, where: Path) -> Site:
    p = where / "m.yaml"
    p.write_text(text)
    return load_site(p)


def test_default_lab_uses_the_example_spec() -> None:
    cfg = from_env({})
    assert sitespec.is_default(cfg)
    site = load_site(sitespec.EXAMPLE)
    assert [(n.name, n.ssh_port, n.management_ip) for n in site.nodes] == [
        (name, cfg.ssh_port(i), cfg.address(i)) for i, name in enumerate(cfg.node_names, 1)]
    # the example's relative key paths reach the lab's own key and known_hosts
    assert Path(str(site.access.ssh_key)).resolve() == cfg.ssh_key.resolve()
    assert Path(str(site.access.known_hosts)).resolve() == cfg.known_hosts.resolve()


def test_debian_mirror_is_read_from_apt_sources(tmp_path: Path) -> None:
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\n")
    assert image.debian_mirror(tmp_path) == "http://mirror.example/debian"
    assert image.debian_mirror(tmp_path / "none") == image.FALLBACK_MIRROR


def test_known_hosts_line() -> None:
    line = keys.known_hosts_line(2201, "ssh-ed25519 AAAAC3Nza root@lab-n1")
    assert line == "[127.0.0.1]:2201 ssh-ed25519 AAAAC3Nza"
    with pytest.raises(Exception, match="unexpected host key"):
        keys.known_hosts_line(2201, "garbage")
    argv = keys.ssh_argv(Path("/k"), Path("/kh"), 2201, "true")
    assert "StrictHostKeyChecking=yes" in argv and "UserKnownHostsFile=/kh" in argv

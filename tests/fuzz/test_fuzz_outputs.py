"""Output targets forge is pointed at: devices, links, full disks, odd directories, forged
manifests, interrupted re-renders. Nothing outside the output directory is written or
deleted, a device or link is never replaced, and every failure is one line with exit 2."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from fuzz.forgerun import forge, snapshot

ROOT = Path(__file__).resolve().parents[2]
SMALL = ROOT / "site-specs" / "small.yaml"
NCCL = (ROOT.parent / "shared" / "fixtures" / "real" / "nccl-tests"
        / "gcm-a100-sxm4-80gb-1node-8gpu-nccl2.16.2-hostname-placeholder.txt")


@pytest.fixture
def chardev(tmp_path: Path) -> Path:
    """A character device of our own (the null device's numbers), never a system one."""
    dev = tmp_path / "mydev"
    try:
        os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("mknod needs root")
    return dev


def _is_chardev(path: Path) -> bool:
    return stat.S_ISCHR(os.lstat(path).st_mode)


def test_schema_into_a_device_writes_through(chardev: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    forge("schema", "-o", chardev, capsys=capsys).assert_ok()
    assert _is_chardev(chardev)


def test_schema_into_dev_full_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    forge("schema", "-o", "/dev/full", capsys=capsys).assert_refused(2, names="/dev/full")
    assert _is_chardev(Path("/dev/full"))


def test_output_link_is_kept_and_its_target_written(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    target, link = tmp_path / "target.json", tmp_path / "link.json"
    target.write_text("user data")
    link.symlink_to(target)
    forge("schema", "-o", link, capsys=capsys).assert_ok()
    assert link.is_symlink() and json.loads(target.read_text())["title"] == "forge site spec"


@pytest.mark.skipif(not NCCL.exists(), reason="shared fixtures not present")
def test_ingest_and_analyze_reports_into_a_device(tmp_path: Path, chardev: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    forge("ingest", "nccl-tests", "--node", "n1", NCCL, "-o", chardev, "--force",
          capsys=capsys).assert_ok()
    assert _is_chardev(chardev)
    records = tmp_path / "r.jsonl"
    forge("ingest", "nccl-tests", "--node", "n1", NCCL, "-o", records, capsys=capsys)
    run = forge("analyze", records, "--prom", chardev, "--force", capsys=capsys)
    assert run.code in (0, 1) and "Traceback" not in run.err
    assert _is_chardev(chardev)


@pytest.mark.parametrize("where", ["parent-is-file", "proc", "dir-as-file"])
def test_unwritable_output_paths_are_one_line(where: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    (tmp_path / "adir").mkdir()
    out = {"parent-is-file": afile / "x.json", "proc": Path("/proc/forge-x/x.json"),
           "dir-as-file": tmp_path / "adir"}[where]
    for args in (["schema", "-o", out], ["render", SMALL, "-o", out]):
        before = snapshot(tmp_path)
        run = forge(*args, capsys=capsys)
        if where == "dir-as-file" and args[0] == "render":
            continue  # an (empty) directory is exactly what render wants
        run.assert_refused(2)
        assert snapshot(tmp_path) == before


def _rendered(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    out = tmp_path / "out"
    forge("render", SMALL, "-o", out, capsys=capsys).assert_ok()
    return out


def test_forged_manifest_entry_outside_is_never_deleted(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = _rendered(tmp_path, capsys)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    manifest = json.loads((out / ".forge-manifest.json").read_text())
    digest = hashlib.sha256(b"keep me").hexdigest()
    for rel in ("../victim.txt", str(victim), "host_vars/../../victim.txt"):
        manifest["files"][rel] = digest
    (out / ".forge-manifest.json").write_text(json.dumps(manifest))
    forge("render", SMALL, "-o", out, capsys=capsys).assert_ok()
    assert victim.read_text() == "keep me"
    assert not any(".." in k or k.startswith("/") for k in json.loads(
        (out / ".forge-manifest.json").read_text())["files"])


@pytest.mark.parametrize("damage", ["binary", "not-json", "list"])
def test_damaged_manifest_keeps_every_file(damage: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = _rendered(tmp_path, capsys)
    content = {"binary": b"\xff\xfe\x00garbage", "not-json": b"{", "list": b"[1, 2]"}[damage]
    (out / ".forge-manifest.json").write_bytes(content)
    edited = out / "host_vars" / "gpu001.yml"
    edited.write_text("# mine\n")
    changed = tmp_path / "changed.yaml"
    changed.write_text(SMALL.read_text().replace("cluster.example.com", "c2.example.com"))
    run = forge("render", changed, "-o", out, capsys=capsys)
    run.assert_ok()
    assert edited.read_text() == "# mine\n"  # without a manifest nothing counts as forge's


@pytest.mark.parametrize("where", [".forge-manifest.json", "host_vars/gpu001.yml"])
def test_directory_where_a_file_goes(where: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = _rendered(tmp_path, capsys)
    (out / where).unlink()
    (out / where).mkdir()
    forge("render", SMALL, "-o", out, capsys=capsys).assert_refused(2, names=where.split("/")[-1])


def test_output_dir_given_as_a_link(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    real, link = tmp_path / "real", tmp_path / "link"
    real.mkdir()
    link.symlink_to(real)
    forge("render", SMALL, "-o", link, capsys=capsys).assert_ok()
    assert link.is_symlink() and (real / "hosts.yml").is_file()
    forge("render", SMALL, "-o", link, capsys=capsys).assert_ok()


@contextlib.contextmanager
def _tiny_tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _manifest_whole(out: Path) -> dict[str, str]:
    files: dict[str, str] = json.loads((out / ".forge-manifest.json").read_text())["files"]
    for rel, digest in files.items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == digest, rel
    return files


def test_full_disk_rerender_leaves_the_old_inventory(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    with _tiny_tmpfs(tmp_path / "disk", "96k") as disk:
        out = disk / "inv"
        forge("render", SMALL, "-o", out, capsys=capsys).assert_ok()
        old = _manifest_whole(out)
        doc = yaml.safe_load(SMALL.read_text())
        doc["node_groups"][1]["nodes"] = "gpu[001-012]"
        doc["cluster"]["size"] = "custom"
        doc["node_groups"][1].pop("node_data")
        bigger = tmp_path / "bigger.yaml"
        bigger.write_text(yaml.safe_dump(doc) + "# " + "x" * 200_000 + "\n")
        forge("render", bigger, "-o", out, capsys=capsys).assert_refused(2, names="space")
        assert _manifest_whole(out) == old
        assert [p.name for p in disk.iterdir()] == ["inv"]


def _big_spec(path: Path, nodes: int, fabric: int) -> Path:
    doc = yaml.safe_load(SMALL.read_text())
    doc["cluster"]["size"] = "custom"
    doc["networks"]["management"] = {"subnet": "10.10.0.0/16"}
    doc["networks"]["bmc"] = {"subnet": "10.11.0.0/16"}
    doc["networks"]["fabric"]["rails"] = [{"name": f"rail{i}", "subnet": f"10.{20 + i}.0.0/16"}
                                          for i in range(8)]
    doc["node_groups"][0]["addresses"] = {"management": "10.10.0.10", "bmc": "10.11.0.10"}
    group = doc["node_groups"][1]
    group["nodes"] = f"gpu[00001-{nodes:05d}]"
    group["addresses"] = {"management": "10.10.1.1", "bmc": "10.11.1.1", "fabric": fabric}
    group.pop("node_data")
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("delay", [0.6, 1.2, 1.8])
def test_interrupted_rerender_is_old_or_new_never_a_mix(sig: int, delay: float, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    out = tmp_path / "inv"
    forge("render", _big_spec(tmp_path / "v1.yaml", 3000, 101), "-o", out,
          capsys=capsys).assert_ok()
    old = _manifest_whole(out)
    v2 = _big_spec(tmp_path / "v2.yaml", 3000, 201)
    forge("render", v2, "-o", tmp_path / "ref", capsys=capsys).assert_ok()
    new = _manifest_whole(tmp_path / "ref")
    proc = subprocess.Popen([sys.executable, "-m", "provision", "render", str(v2), "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err
    assert proc.returncode in (0, 130, 143), (proc.returncode, err)
    now = _manifest_whole(out)
    assert now in (old, new)           # every file whole, and all of one render or the other
    assert now == new or proc.returncode != 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inv", "ref", "v1.yaml", "v2.yaml"]


@pytest.mark.parametrize("args", [["--width", "0"], ["--width", "-5"],
                                  ["--width", "100000000"], ["--since", "99999999999d"]])
def test_history_flags_out_of_range(args: list[str], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    from provision.history.store import HistoryStore

    db = tmp_path / "h.db"
    HistoryStore(db).close()
    run = forge("history", "--db", db, *args, capsys=capsys)
    if args[0] == "--since":
        run.assert_ok()
    else:
        run.assert_refused(2, names="--width")


def test_sweep_import_refuses_non_utf8_and_empty_results(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    bad, bare = tmp_path / "bad.json", tmp_path / "bare.json"
    bad.write_bytes(b'{"kind": "forge-sweep-result", "x": "\xff"}')
    bare.write_text('{"kind": "forge-sweep-result"}')
    db = tmp_path / "h.db"
    forge("sweep", "import", bad, "--db", db, capsys=capsys).assert_refused(2, names="UTF-8")
    forge("sweep", "import", bare, "--db", db, capsys=capsys).assert_refused(2, names="run_id")


@pytest.mark.skipif(not NCCL.exists(), reason="shared fixtures not present")
def test_reports_into_unwritable_places_are_one_line(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    records = tmp_path / "r.jsonl"
    forge("ingest", "nccl-tests", "--node", "n1", NCCL, "-o", records, capsys=capsys).assert_ok()
    forge("ingest", "nccl-tests", "--node", "n1", NCCL, "-o", "/proc/forge-x/r.jsonl",
          capsys=capsys).assert_refused(2, names="/proc/forge-x")
    for flag in ("--junit", "--prom", "--html"):
        forge("analyze", records, flag, "/proc/forge-x/report", capsys=capsys).assert_refused(
            2, names="/proc/forge-x")


def test_migrate_never_creates_directories(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    forge("migrate", SMALL, "-o", tmp_path / "no" / "such" / "x.yaml",
          capsys=capsys).assert_refused(2, names="no such directory")
    assert not (tmp_path / "no").exists()


def test_deploy_with_missing_vault_password_file_is_bad_input(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(tmp_path / "missing"))
    forge("deploy", SMALL, "--check", "--runs-dir", tmp_path / "runs",
          capsys=capsys).assert_refused(2, names="ANSIBLE_VAULT_PASSWORD_FILE")


def test_fold_of_names_that_are_not_node_names() -> None:
    from provision.nodes import fold

    assert fold(["gpu[01", "gpu002"]) == "gpu002,gpu[01"
    assert fold(["gpu001", "gpu002"]) == "gpu[001-002]"


def test_unchanged_rerender_writes_nothing(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A read-only inventory that is already up to date is not an error: nothing is written."""
    out = _rendered(tmp_path, capsys)
    before = {p: p.stat().st_ino for p in out.rglob("*")}
    forge("render", SMALL, "-o", out, capsys=capsys).assert_ok()
    assert {p: p.stat().st_ino for p in out.rglob("*")} == before


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.5, 1.0, 1.5])
def test_sigterm_during_a_fresh_render_leaves_nothing(delay: float, tmp_path: Path) -> None:
    spec = _big_spec(tmp_path / "v1.yaml", 3000, 101)
    out = tmp_path / "inv"
    proc = subprocess.Popen([sys.executable, "-m", "provision", "render", str(spec), "-o",
                             str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    time.sleep(delay)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err
    if proc.returncode == 0:
        _manifest_whole(out)
    else:
        assert proc.returncode == 143 and "terminated" in err
        assert sorted(p.name for p in tmp_path.iterdir()) == ["v1.yaml"]


def test_measurement_and_tool_output_edge_cases_are_bad_input(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    huge_gpu = tmp_path / "gpu.jsonl"
    huge_gpu.write_text(json.dumps({"node": "gpu003", "gpu": 2**63 - 1, "metric": "hbm_bandwidth",
                                    "value": 3187.4, "unit": "GB/s"}) + "\n")
    forge("analyze", huge_gpu, capsys=capsys).assert_refused(2)
    wide = tmp_path / "wide.csv"
    wide.write_text('name, pci.bus_id\n"' + "x" * 200_000 + '", 00000000:18:00.0\n')
    forge("ingest", "nvidia-smi-query-gpu", "--node", "n1", wide, capsys=capsys).assert_refused(2)

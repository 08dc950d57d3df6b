"""Reports on real outputs: a multi-node nccl-tests ingest and an RMA case, in headless Chromium,
and the RMA evidence bundle read back."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from provision.measurement import run_file

REAL = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "real"
FIELD = Path(__file__).resolve().parents[1] / "parsers" / "fixtures"
FORGE = [sys.executable, "-m", "provision"]


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"fixture {path} not found")
    return path


def _forge(*args: str | Path, cwd: Path, ok: tuple[int, ...] = (0, 1)) -> subprocess.CompletedProcess:
    p = subprocess.run([*FORGE, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode in ok, p.stderr
    assert "Traceback" not in p.stderr, p.stderr
    return p


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _render(page: Path, tmp: Path) -> tuple[str, object]:
    """(the DOM after load, the screenshot) of ``page`` in headless Chromium."""
    from PIL import Image

    chromium = _chromium()
    assert chromium is not None
    common = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
              "--no-first-run", "--disable-background-networking", "--disable-component-update",
              "--disable-sync", f"--user-data-dir={tmp / 'profile'}", "--window-size=1200,1600"]
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], check=True,
                         capture_output=True, text=True, timeout=120).stdout
    shot = tmp / f"{page.stem}.png"
    subprocess.run([*common, f"--screenshot={shot}", page.as_uri()], check=True,
                   capture_output=True, timeout=120)
    return dom, Image.open(shot).convert("RGB")


def _red_pixels(img: object) -> int:
    colours = img.getcolors(maxcolors=1 << 20) or []  # type: ignore[attr-defined]
    assert len(colours) > 50                            # text and plots: not a blank page
    return sum(n for n, (r, g, b) in colours if r > 190 and g < 70 and b < 70)


@pytest.fixture
def nccl_multinode(tmp_path: Path) -> Path:
    logs = [_need(REAL / "nccl-tests" / n) for n in (
        "cscs-gh200-2node-8gpu-v2.17.1-no-ofi-plugin-slow.txt",
        "oci-bm-gpu4.8-a100-2node-16gpu-10G-ubuntu.txt",
        "nccltests107-non-mpi-build-duplicated-headers-truncated.txt")]
    _forge("ingest", "nccl-tests", *logs, "-o", tmp_path / "nccl.jsonl", cwd=tmp_path)
    return tmp_path / "nccl.jsonl"


def test_html_of_a_multinode_nccl_ingest_renders_and_names_everything(
        nccl_multinode: Path, tmp_path: Path) -> None:
    page = tmp_path / "nccl.html"
    p = _forge("analyze", nccl_multinode, "--html", page, "--json", "--cluster", "lab-a",
               cwd=tmp_path)
    assert json.loads(p.stdout)["verdict"] == "fail"  # the non-MPI build's failure
    html = page.read_text()
    # cluster and run named; the tool's words; hosts that only appear as a peer have a card
    assert "lab-a" in html and "nccl.jsonl" in html
    assert "nccl-tests built without MPI support" in html
    assert "ip-172-31-22-230" in html and "&gt;= 15.52" not in html
    if _chromium() is None:
        pytest.skip("chromium is not installed")
    dom, img = _render(page, tmp_path)
    # node names are text in the page (readable in print), not only hover titles
    assert ">nid005471<" in dom and ">ip-172-31-20-228<" in dom
    assert _red_pixels(img) > 500                      # FAIL badge and the failing card


def _rma_run(tmp_path: Path, table: str = "jsonl") -> Path:
    """A run directory as forge check writes it (``--table``: its measurements file's
    form), from real outputs of one failing GPU."""
    run = tmp_path / "runs" / "check-20260101T000000Z"
    raw = run / "raw"
    q = _need(REAL / "nvidia-smi-q" / "gpud-a10-535.129.03-remap-pending.txt")
    xid = _need(REAL / "dmesg-xid" / "stas-xid63-row-remapper-line.txt")
    for check, src in (("nvidia-smi-q", q), ("dmesg-xid", xid)):
        (raw / check).mkdir(parents=True)
        shutil.copyfile(src, raw / check / "gpu017.out")
    _forge("ingest", "auto", "--node", "gpu017", q, xid, "-o", run / run_file(table),
           cwd=tmp_path)
    return run


def test_rma_bundle_reads_back(tmp_path: Path) -> None:
    run = _rma_run(tmp_path)
    out = tmp_path / "bundle"
    # the shape 'forge bmc inventory --json' writes (provision/bmc/report.py inventory_json)
    inv = tmp_path / "inventory.json"
    inv.write_text(json.dumps({"schema_version": 1, "kind": "bmc-inventory", "nodes": {
        "gpu017": {"address": "10.0.0.17", "status": "ok", "message": None, "elapsed_s": 0.1,
                   "inventory": {"node": "gpu017", "serial": "J900XYZ1"}, "findings": []}}}))
    _forge("rma", "gpu017:0", run, "-o", out, "--cluster", "lab-a", "--bmc-inventory", inv,
           cwd=tmp_path, ok=(0,))
    doc = json.loads((out / "evidence.json").read_text())
    part = doc["part"]
    assert (part["node"], part["gpu"]) == ("gpu017", 0)
    assert part["serial"] == "1324521052681"
    assert part["uuid"] == "GPU-73d12ef7-f589-f867-4259-c7090ab44736"
    assert part["bus_id"] == "00000000:07:00.0" and part["vbios"] == "94.02.5C.00.04"
    assert part["node_serial"] == "J900XYZ1"
    assert doc["verdict"] == "fail"
    metrics = {f["metric"]: f for f in doc["findings"]}
    assert metrics["remapped_rows_pending"]["severity"] == "fail"
    assert metrics["remapped_rows_pending"]["source"] and metrics["remapped_rows_pending"]["limit"] == 0
    assert "Xid 63" in (metrics["xid_events"]["tool_says"] or "")
    files = {e["file"] for e in doc["excerpts"]}
    assert files == {"raw/nvidia-smi-q/gpu017.out", "raw/dmesg-xid/gpu017.out"}
    assert any("Xid" in ln for e in doc["excerpts"] for ln in e["lines"])
    cmds = " ".join(c["command"] for c in doc["next_commands"])
    assert "nvidia-bug-report.sh" in cmds and "dcgmi diag -r 3" in cmds
    assert "-i 00000000:07:00.0" in cmds
    readme = (out / "README.txt").read_text()
    assert "serial: 1324521052681" in readme and "Verdict: FAIL" in readme
    copied = out / "raw" / run.name / "raw" / "dmesg-xid" / "gpu017.out"
    assert copied.read_text() == (run / "raw" / "dmesg-xid" / "gpu017.out").read_text()
    # an existing bundle is not replaced without --force, and nothing half-written is left
    _forge("rma", "gpu017:0", run, "-o", out, cwd=tmp_path, ok=(2,))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".bundle")) == []
    if _chromium() is None:
        pytest.skip("chromium is not installed")
    dom, img = _render(out / "report.html", tmp_path)
    assert "1324521052681" in dom and "lab-a" in dom and "remapped_rows_pending" in dom
    assert _red_pixels(img) > 500


def test_rma_of_a_parquet_run_is_the_rma_of_the_same_run_as_json_lines(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    bundles = {}
    for table in ("jsonl", "parquet"):
        here = tmp_path / table
        run = _rma_run(here, table)
        assert [p.name for p in run.glob("measurements.*")] == [run_file(table)]
        p = _forge("rma", "gpu017:0", run.relative_to(here), "-o", "bundle", "--cluster",
                   "lab-a", cwd=here, ok=(0,))
        files = {f.relative_to(here / "bundle"): f.read_bytes()
                 for f in sorted((here / "bundle").rglob("*")) if f.is_file()}
        # what names the input file or the time differs; everything else must not
        stamp = re.compile(rb"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\dZ?( UTC)?")
        bundles[table] = (p.stderr, {name: stamp.sub(b"TIME", text.replace(
            run_file(table).encode(), b"MEASUREMENTS")) for name, text in files.items()})
    assert bundles["parquet"] == bundles["jsonl"]
    doc = json.loads(bundles["parquet"][1][Path("evidence.json")])
    assert doc["inputs"] == ["runs/check-20260101T000000Z/MEASUREMENTS"]
    assert doc["verdict"] == "fail" and doc["part"]["serial"] == "1324521052681"
    assert {f["metric"] for f in doc["findings"] if f["severity"] == "fail"} >= {
        "remapped_rows_pending"}


def test_rma_of_an_unmeasured_part_is_refused(tmp_path: Path) -> None:
    run = _rma_run(tmp_path)
    p = _forge("rma", "gpu099:1", run, cwd=tmp_path, ok=(2,))
    assert "gpu099 GPU 1: no readings of this part" in p.stderr
    assert not (tmp_path / "rma-gpu099-gpu1").exists()


def test_rma_quotes_the_parts_history(tmp_path: Path) -> None:
    from provision.history.store import HistoryStore, RunInfo
    from provision.measurement import iter_records

    run = _rma_run(tmp_path)
    db = tmp_path / "history.db"
    with HistoryStore(db) as store:
        store.record(RunInfo(run_id="sweep-1", started=1.7e9, kind="import"),
                     list(iter_records(run / "measurements.jsonl")))
    out = tmp_path / "bundle"
    _forge("rma", "gpu017:0", run, "-o", out, "--db", db, cwd=tmp_path, ok=(0,))
    hist = json.loads((out / "evidence.json").read_text())["history"]
    assert hist and all(h["uuid"] in (None, "GPU-73d12ef7-f589-f867-4259-c7090ab44736")
                        for h in hist)
    assert any(h["metric"] == "remapped_rows_pending" and h["value"] == 1 for h in hist)
    assert {h["run_id"] for h in hist} == {"sweep-1"}


def test_junit_stays_well_formed_with_control_characters() -> None:
    import xml.etree.ElementTree as ET

    from provision.analyze import analyze
    from provision.report.junit import junit_xml

    recs = [{"node": f"n\x01{i}", "gpu": None, "metric": "tool_ran_ok", "value": 0.0,
             "min": 1.0, "detail": "gpu-burn: \x1b[31mCouldn't init\x07"} for i in range(2)]
    root = ET.fromstring(junit_xml(analyze(recs)).split("\n", 2)[2])
    cases = root.findall(".//testcase")
    assert [c.get("name") for c in cases] == ["n?0", "n?1"]
    assert "Couldn't init" in (cases[0].find("failure").text or "")

"""Bad input to `forge analyze` and `forge ingest`, interrupted analyses, and the smaller
commands' input and output paths: the documented exit code, one `forge: error:` line naming
the file/line or field, never a traceback, nothing written outside the output directory and
nothing silently dropped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fuzz.forgerun import forge, forge_process, snapshot

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT.parent / "shared" / "fixtures" / "real"
SMALL = ROOT / "site-specs" / "small.yaml"
LARGE = ROOT / "site-specs" / "large.yaml"
needs_fixtures = pytest.mark.skipif(not REAL.is_dir(), reason="shared fixtures not present")
as_root = pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")

Cap = pytest.CaptureFixture[str]


def _fleet(extra: list[dict[str, object]], nodes: int = 8) -> list[dict[str, object]]:
    recs: list[dict[str, object]] = [
        {"node": f"gpu{n:03d}", "gpu": g, "metric": "hbm_bandwidth",
         "value": 3300.0 + (n * 8 + g) % 7, "unit": "GB/s"}
        for n in range(1, nodes + 1) for g in range(8)]
    return recs + extra


def _jsonl(path: Path, recs: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


# -- 3. forge analyze ---------------------------------------------------------------------

@pytest.mark.parametrize("record, field, where", [
    ({"node": "gpu099", "gpu": 2**63 - 1, "metric": "hbm_bandwidth", "value": 3300.0}, "gpu",
     "m.jsonl:65"),
    ({"node": "gpu099", "gpu": 0, "metric": "hbm_bandwidth", "value": 3300.0, "unit": "furlong"},
     "unit", "gpu099"),
    ({"node": "gpu099", "gpu": 0, "metric": "hbm_bandwidth", "value": 3300.0, "unit": "W"},
     "unit", "gpu099"),
], ids=["gpu-2-63", "unit-unknown", "unit-foreign"])
def test_analyze_refuses_bad_field(record: dict[str, object], field: str, where: str,
                                   tmp_path: Path, capsys: Cap) -> None:
    src = _jsonl(tmp_path / "m.jsonl", _fleet([record]))
    run = forge("analyze", src, capsys=capsys)
    run.assert_refused(2, names="m.jsonl")
    assert f"field '{field}'" in run.err and where in run.err, run.err


@pytest.mark.parametrize("unit, factor, code", [
    ("MB/s", 1000.0, 1),      # 15 % low, written in MB/s: still found
    ("TB/s", 0.001, 0),       # healthy, written in TB/s: not blamed
], ids=["mixed-units-hidden-fault", "mixed-units-tb-healthy"])
def test_analyze_judges_readings_in_one_unit(unit: str, factor: float, code: int,
                                             tmp_path: Path, capsys: Cap) -> None:
    value = 3300.0 * (0.85 if code else 1.0)
    recs = [r if r["node"] != "gpu001" or r["gpu"] != 0 else
            {**r, "value": value * factor, "unit": unit} for r in _fleet([])]
    run = forge("analyze", _jsonl(tmp_path / "m.jsonl", recs), capsys=capsys)
    assert run.code == code, (run.code, run.out[-2000:], run.err[-2000:])
    assert "Traceback" not in run.err
    if code:
        assert "gpu001" in run.err


@pytest.mark.parametrize("node", ["gpu\x00\x1b[31mred", "gpu[01", "gpu\x01x", "<b>&'\"\nx"],
                         ids=["nul-ansi-node", "bracket-node", "ctrl-char-node", "xml-node"])
def test_analyze_reports_of_odd_node_names(node: str, tmp_path: Path, capsys: Cap) -> None:
    """A node name no report format can hold raw: every report written and well-formed, or
    none; never a traceback."""
    src = _jsonl(tmp_path / "m.jsonl", _fleet(
        [{"node": node, "gpu": g, "metric": "hbm_bandwidth", "value": 2000.0, "unit": "GB/s"}
         for g in range(8)]))
    out = tmp_path / "out"
    out.mkdir()
    reports = [out / "j.xml", out / "p.prom", out / "r.html"]
    run = forge("analyze", src, "--json", "--junit", reports[0], "--prom", reports[1],
                "--html", reports[2], capsys=capsys)
    assert "Traceback" not in run.err, run.err[-2000:]
    if run.code == 2:
        run.assert_refused(2, names="node")
        assert list(out.iterdir()) == []
        return
    assert run.code == 1, (run.code, run.err[-2000:])
    json.loads(run.out)
    ET.parse(reports[0])
    for line in reports[1].read_text().splitlines():
        assert line.startswith(("#", "forge_")), line
    assert reports[2].stat().st_size > 0


def test_analyze_interrupted_while_rendering_leaves_no_report(
        tmp_path: Path, capsys: Cap, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C during the last report: exit 130 and no report of the interrupted run (a
    Prometheus textfile from a run that did not finish would be scraped as a result)."""
    import provision.report.html as html

    def interrupted(*_a: object, **_k: object) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(html, "html_report", interrupted)
    src = _jsonl(tmp_path / "m.jsonl", _fleet([]))
    out = tmp_path / "out"
    out.mkdir()
    run = forge("analyze", src, "--junit", out / "j.xml", "--prom", out / "p.prom",
                "--html", out / "r.html", capsys=capsys)
    assert run.code == 130 and "Traceback" not in run.err, (run.code, run.err[-2000:])
    assert list(out.iterdir()) == []


# -- 4. forge ingest ----------------------------------------------------------------------

def test_ingest_csv_field_over_the_csv_module_limit(tmp_path: Path, capsys: Cap) -> None:
    wide = tmp_path / "wide.csv"
    wide.write_text('name, pci.bus_id\n"' + "x" * 200_000 + '", 00000000:18:00.0\n')
    forge("ingest", "nvidia-smi-query-gpu", "--node", "n1", wide,
          capsys=capsys).assert_refused(2, names="wide.csv")


_XID = ("[Mon Mar  3 10:00:00 2025] NVRM: Xid (PCI:0000:18:00): 79, pid=0, "
        "GPU has fallen off the bus.\n")
AMBIGUOUS = {  # first part, second part (a fixture, or a kernel log line)
    "dmesg_then_smiq": ("dmesg-xid/gpud-dmesg-iso-xid48-63-94.txt",
                        "nvidia-smi-q/gpud-8x-h100-535.183.01.txt"),
    "gpuburn_then_xid": ("gpu-burn/issue8-azure-k80-10s-no-final-summary.txt", _XID),
    "ibstat_then_nccl": ("ibstat/gpud-a100-hdr-all-active.txt",
                         "nccl-tests/oci-bm-gpu4.8-a100-1node-8gpu-10G.txt"),
    "perftest_then_topo": ("perftest/schmaustech-a40-roce-16qp-use-cuda-client.txt",
                           "nvidia-smi-topo/xuesong-4x-a10-all-sys-2nics.txt"),
    "smiq_then_dmesg": ("nvidia-smi-q/gpud-8x-h100-535.183.01.txt",
                        "dmesg-xid/gpud-dmesg-iso-xid48-63-94.txt"),
    "xid_line_then_smiq": (_XID, "nvidia-smi-q/gpud-8x-h100-535.183.01.txt"),
}


def _part(tmp_path: Path, name: str, part: str) -> Path:
    if part.endswith(".txt"):
        return REAL / part
    p = tmp_path / f"{name}.log"
    p.write_text(part)
    return p


def _records(path: Path) -> list[str]:
    return sorted(json.loads(ln)["metric"] for ln in path.read_text().splitlines())


@needs_fixtures
@pytest.mark.parametrize("name", sorted(AMBIGUOUS))
def test_ingest_auto_keeps_every_tool_of_a_mixed_file(name: str, tmp_path: Path,
                                                      capsys: Cap) -> None:
    """Two tools' outputs in one file: auto gives both tools' records, or refuses; it never
    keeps one and drops the other."""
    parts = [_part(tmp_path, f"p{i}", p) for i, p in enumerate(AMBIGUOUS[name])]
    want: list[str] = []
    for i, p in enumerate(parts):
        one = tmp_path / f"one{i}.jsonl"
        forge("ingest", "auto", "--node", "n1", p, "-o", one, capsys=capsys).assert_ok()
        want += _records(one)
    mixed = tmp_path / f"{name}.txt"
    mixed.write_text("".join(p.read_text().rstrip("\n") + "\n" for p in parts))
    both = tmp_path / "both.jsonl"
    run = forge("ingest", "auto", "--node", "n1", mixed, "-o", both, capsys=capsys)
    if run.code == 2:
        run.assert_refused(2, names=mixed.name)
        assert not both.exists()
        return
    run.assert_ok()
    assert _records(both) == sorted(want)


WRONG_TOOL = [
    ("gpu-burn", "nvidia-smi-nvlink/exporter-h100-18links-590.48.01-tab-indent.txt"),
    ("gpu-burn", "nvidia-smi-nvlink/exporter-h100-mig-nvlink-not-supported-590.48.01.txt"),
    ("gpu-burn", "nvidia-smi-nvlink/exporter-l40s-no-nvlink-595.80.txt"),
    ("gpu-burn", "nvidia-smi-nvlink/gpud-8x-a100-sxm4-80gb-nvlink-status.txt"),
    ("gpu-burn", "nvidia-smi-nvlink/stas-h100-nvlink-errors-elided.txt"),
    ("gpu-burn", "nvidia-smi-nvlink/stas-h100-nvlink-status-elided.txt"),
    ("dmesg-xid", "nvidia-smi-nvlink/stas-h100-nvlink-errors-elided.txt"),
    ("dmesg-xid", "nvidia-smi-nvlink/stas-h100-nvlink-status-elided.txt"),
    ("dmesg-xid", "nvidia-smi-query-gpu/stas-h100-name-busid-vbios-elided.txt"),
]


@needs_fixtures
@pytest.mark.parametrize("tool, fixture", WRONG_TOOL,
                         ids=[f"{t}-on-{Path(f).stem}" for t, f in WRONG_TOOL])
def test_ingest_wrong_tool_is_refused(tool: str, fixture: str, tmp_path: Path,
                                      capsys: Cap) -> None:
    """Another tool's output is not an empty (healthy) run of this one."""
    out = tmp_path / "o.jsonl"
    forge("ingest", tool, "--node", "n1", REAL / fixture, "-o", out,
          capsys=capsys).assert_refused(2, names=f"cannot parse as {tool} output")
    assert not out.exists()


# -- 8. other commands and output paths -----------------------------------------------------

@pytest.mark.parametrize("case", ["debug-validate-missing", "migrate-missing",
                                  "migrate-nonutf8", "schema-o-below-a-file"])
def test_small_commands_bad_paths(case: str, tmp_path: Path, capsys: Cap) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"site: \xff\xfe\n")
    before = snapshot(tmp_path)
    args, names = {
        "debug-validate-missing": (["--debug", "validate", tmp_path / "nope.yaml"], "nope.yaml"),
        "migrate-missing": (["migrate", tmp_path / "nope.yaml", "-o", tmp_path / "n.yaml"],
                            "nope.yaml"),
        "migrate-nonutf8": (["migrate", bad, "-o", tmp_path / "n.yaml"], "bad.yaml"),
        "schema-o-below-a-file": (["schema", "-o", bad / "x.json"], "bad.yaml"),
    }[case]
    run = forge(*args, capsys=capsys)
    if case.startswith("debug"):   # --debug adds the traceback, keeps the exit code
        assert run.code == 2, (run.code, run.err[-2000:])
        assert "forge: error:" in run.err and "nope.yaml" in run.err
    else:
        run.assert_refused(2, names=names)
    assert snapshot(tmp_path) == before


def test_validate_with_stdout_closed() -> None:
    proc = subprocess.run(f"'{sys.executable}' -m provision validate '{SMALL}' >&-",
                          shell=True, capture_output=True, text=True, timeout=60)
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.returncode in (0, 2), (proc.returncode, proc.stderr)


def test_plan_into_a_reader_that_goes_away() -> None:
    proc = subprocess.run(["bash", "-c", f"'{sys.executable}' -m provision plan '{LARGE}' "
                           "| head -1 >/dev/null; exit ${PIPESTATUS[0]}"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr


@as_root
def test_history_reads_a_db_in_a_read_only_directory(tmp_path: Path) -> None:
    from provision.history.store import HistoryStore

    ro = tmp_path / "ro"
    ro.mkdir()
    HistoryStore(ro / "h.db").close()
    ro.chmod(0o555)
    try:
        forge_process("history", "--db", ro / "h.db").assert_ok()
    finally:
        ro.chmod(0o755)


@needs_fixtures
@as_root
def test_reports_into_a_read_only_directory(tmp_path: Path, capsys: Cap) -> None:
    nccl = REAL / "nccl-tests" / "oci-bm-gpu4.8-a100-1node-8gpu-10G.txt"
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        forge("ingest", "nccl-tests", nccl, "-o", ro / "x.jsonl",
              capsys=capsys).assert_refused(2, names="ro")
        src = _jsonl(tmp_path / "m.jsonl", _fleet([]))
        forge("analyze", src, "--junit", ro / "j.xml", capsys=capsys).assert_refused(2, names="ro")
    finally:
        ro.chmod(0o755)

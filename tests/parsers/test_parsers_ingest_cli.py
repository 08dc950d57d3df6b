"""``forge ingest`` end to end: records out, bad input refused with exit 2 and no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from parsers_support import REAL, fixture_text

from provision.cli.main import main
from provision.measurement import iter_records

NCCL = "nccl-tests/gcm-a100-sxm4-80gb-1node-8gpu-nccl2.16.2-hostname-placeholder.txt"
IBSTAT = "ibstat/gpud-h100-some-ports-down-0.txt"


def forge(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "provision", *args], capture_output=True,
                          text=stdin is None, input=stdin, timeout=60)


def call(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The CLI in-process, through the same error boundary as the forge entry point."""
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def copy(tmp_path: Path, rel: str) -> Path:
    dst = tmp_path / Path(rel).name
    dst.write_text(fixture_text(rel), encoding="utf-8")
    return dst


def test_stdout_jsonl_auto(tmp_path: Path) -> None:
    res = forge("ingest", "auto", str(copy(tmp_path, NCCL)))
    assert res.returncode == 0, res.stderr
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    busbw = [x for x in lines if x["metric"] == "nccl_busbw"]
    assert busbw == [{"check": "nccl-tests", "detail": busbw[0]["detail"], "gpu": None,
                      "metric": "nccl_busbw", "node": "{hostname}", "unit": "GB/s",
                      "value": 231.72}]
    assert "nccl-tests: 17 records" in res.stderr


def test_output_file_node_and_check(tmp_path: Path) -> None:
    out = tmp_path / "m.jsonl"
    res = forge("ingest", "ibstat", str(copy(tmp_path, IBSTAT)), "--node", "gpu007",
                "-o", str(out), "--check", "conformance")
    assert res.returncode == 0, res.stderr and res.stdout == ""
    recs = list(iter_records(out, strict=True))
    down = [r for r in recs if r.metric == "nic_port_up" and r.value == 0]
    assert len(down) == 3 and {r.node for r in recs} == {"gpu007"}
    assert {r.check for r in recs} == {"conformance"}
    again = forge("ingest", "ibstat", str(copy(tmp_path, IBSTAT)), "--node", "x", "-o", str(out))
    assert again.returncode == 2 and "exists" in again.stderr and "--force" in again.stderr
    assert list(iter_records(out)) == recs  # untouched
    forced = forge("ingest", "ibstat", str(copy(tmp_path, IBSTAT)), "--node", "x", "-o",
                   str(out), "--force")
    assert forced.returncode == 0 and {r.node for r in iter_records(out)} == {"x"}


def test_several_files_one_bad_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("# nThread 1 nGpus 1\n#\n# Using devices\n")
    out = tmp_path / "m.jsonl"
    res = forge("ingest", "auto", str(copy(tmp_path, NCCL)), str(bad), "-o", str(out))
    assert res.returncode == 2 and not out.exists()
    said = res.stderr.splitlines()
    # what the files before the bad one gave, then its error
    assert said[0].startswith("forge ingest: ") and said[0].endswith("nccl-tests: 17 records")
    assert said[1].startswith(f"forge: error: {bad}")


def test_progress_of_many_files_comes_in_blocks_in_file_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from provision.cli import ingest as ingest_cmd

    logs = [copy(tmp_path, NCCL)]
    for i in range(1, 7):
        logs.append(tmp_path / f"{i}.txt")
        logs[-1].write_text(logs[0].read_text())
    writes: list[str] = []
    real = ingest_cmd._say
    monkeypatch.setattr(ingest_cmd, "_NOTES_AT_ONCE", 3)
    monkeypatch.setattr(ingest_cmd, "_say", lambda notes: (writes.append("\n".join(notes)),
                                                           real(notes)))
    code, _, err = call(capsys, "ingest", "auto", *map(str, logs), "-o", str(tmp_path / "o.jsonl"))
    assert code == 0
    assert [w.count("\n") + 1 for w in writes if w] == [3, 3, 1]
    assert [ln.split(": ")[1] for ln in err.splitlines()[:-1]] == list(map(str, logs))


def test_missing_node_is_exit_2_with_hint(tmp_path: Path) -> None:
    res = forge("ingest", "ibstat", str(copy(tmp_path, IBSTAT)))
    assert res.returncode == 2 and "pass --node NAME" in res.stderr


def test_stdin(tmp_path: Path) -> None:
    res = forge("ingest", "dmesg-xid", "-", "--node", "gpu001",
                stdin=fixture_text("dmesg-xid/stas-xid63-row-remapper-line.txt").encode())
    assert res.returncode == 0
    (rec,) = [json.loads(x) for x in res.stdout.splitlines()]
    assert rec["metric"] == "xid_events" and rec["value"] == 1 and rec["node"] == "gpu001"


GARBAGE = {
    "empty.txt": b"",
    "blank.txt": b"\n\n   \n",
    "words.txt": b"the quick brown fox\njumps over\n",
    "binary.bin": bytes(range(256)) * 4,
    "zeros.bin": b"\x00" * 64,
}


@pytest.mark.parametrize("tool", ["auto", "nccl-tests", "nvidia-smi-topo", "nvidia-smi-q",
                                  "nvidia-smi-nvlink", "nvidia-smi-query-gpu", "ibstat",
                                  "ibstatus", "ibv_devinfo", "perftest", "dcgmi-diag",
                                  "nvbandwidth", "gpu-burn", "dmesg-xid"])
@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_exit_2_no_traceback(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                     tool: str, name: str) -> None:
    f = tmp_path / name
    f.write_bytes(GARBAGE[name])
    code, out, err = call(capsys, "ingest", tool, str(f), "--node", "n1")
    assert code == 2, out
    assert "Traceback" not in err and err.startswith("forge: error: ")
    assert name in err and out == ""


def test_garbage_through_python_m(tmp_path: Path) -> None:
    f = tmp_path / "words.txt"
    f.write_bytes(GARBAGE["words.txt"])
    res = forge("ingest", "auto", str(f))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.startswith(f"forge: error: {f}:1: cannot tell which tool")


TRUNCATED = [
    ("nccl-tests", NCCL, 14),  # ends inside the column header
    ("perftest", "perftest/spiderpool-cx5-roce-ib-read-lat-shared-mode-cpu-freq-warn.txt", 17),
    ("nvbandwidth", "nvbandwidth/readme-8gpu-d2d-write-ce-matrix.txt", 2),
    ("dcgmi-diag", "dcgmi-diag/ramble-dcgm3.3.9-8x-h200-r3-all-pass-eud-skip.txt", 3),
    ("nvidia-smi-topo", "nvidia-smi-topo/xuesong-4x-a10-all-sys-2nics.txt", 1),
]


@pytest.mark.parametrize(("tool", "rel", "keep"), TRUNCATED, ids=[t[0] for t in TRUNCATED])
def test_truncated_to_nothing_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                    tool: str, rel: str, keep: int) -> None:
    f = tmp_path / "cut.txt"
    f.write_text("\n".join(fixture_text(rel).splitlines()[:keep]) + "\n")
    code, out, err = call(capsys, "ingest", tool, str(f), "--node", "n1")
    assert code == 2, out
    assert "Traceback" not in err and "cut.txt" in err and tool in err


def test_unknown_tool_exit_2(tmp_path: Path) -> None:
    res = forge("ingest", "iperf3", str(copy(tmp_path, NCCL)))
    assert res.returncode == 2 and "Traceback" not in res.stderr


def test_every_real_fixture_through_the_cli(tmp_path: Path) -> None:
    if not REAL.is_dir():
        pytest.skip(f"{REAL} not present")
    files = sorted(str(p) for p in REAL.glob("*/*.txt"))
    out = tmp_path / "all.jsonl"
    res = forge("ingest", "auto", *files, "--node", "n1", "-o", str(out))
    assert res.returncode == 0, res.stderr
    assert len(list(iter_records(out, strict=True))) > 1500


@pytest.mark.parametrize("suffix", [".parquet", ".arrow"])
def test_ingest_to_a_table_gives_the_records_of_jsonl(tmp_path: Path, suffix: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pyarrow")
    from provision.analyze.load import read_records

    logs = [str(copy(tmp_path, NCCL)), str(copy(tmp_path, IBSTAT))]
    jsonl, table = tmp_path / "m.jsonl", tmp_path / f"m{suffix}"
    assert call(capsys, "ingest", "auto", "--node", "gpu001", *logs, "-o", str(jsonl))[0] == 0
    code, _, err = call(capsys, "ingest", "auto", "--node", "gpu001", *logs, "-o", str(table))
    assert code == 0, err
    want = read_records(jsonl, strict=True)
    assert len(want) > 10 and not table.read_bytes().startswith(b"{")
    assert read_records(table, strict=True) == want
    assert f"wrote {len(want)} records to {table}" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [Path(x).name for x in logs] + ["m.jsonl", f"m{suffix}"])  # no temporary left

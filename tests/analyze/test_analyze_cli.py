"""`forge analyze` end to end: exit codes, JSON, bad input, report files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import jsonschema
from conftest import gpu_fleet, set_value, write_jsonl

from provision.report.json_report import schema

Forge = Callable[..., tuple[int, str, str]]


def test_all_pass_exits_0(tmp_path: Path, forge: Forge) -> None:
    f = write_jsonl(tmp_path / "m.jsonl", gpu_fleet())
    code, out, _ = forge("analyze", str(f))
    assert code == 0
    assert "PASS: 0 failing, 0 warning findings" in out
    assert "gpu[001-004]: pass" in out


def test_failure_exits_1_and_json_lists_the_entity(tmp_path: Path, forge: Forge) -> None:
    recs = gpu_fleet()
    set_value(recs, "gpu003", 2, 0.9)
    run = tmp_path / "run"
    run.mkdir()
    write_jsonl(run / "measurements.jsonl", recs)
    code, out, err = forge("analyze", str(run), "--json")
    assert code == 1
    assert "acceptance failed: 1 failing findings on gpu003" in err
    doc = json.loads(out)
    jsonschema.validate(doc, schema())
    assert doc["verdict"] == "fail" and doc["exit_code"] == 1
    [entry] = doc["flagged"]
    assert (entry["node"], entry["gpu"], entry["metric"], entry["severity"]) == (
        "gpu003", 2, "hbm_bandwidth", "fail")
    assert entry["value"] == next(r["value"] for r in recs
                                  if r["node"] == "gpu003" and r["gpu"] == 2)
    assert "below the median" in entry["reason"]
    assert doc["nodes"] == {"pass": "gpu[001-002,004]", "warn": "", "fail": "gpu003"}


def test_table_groups_identical_lines_into_node_sets(tmp_path: Path, forge: Forge) -> None:
    recs = [{"node": f"gpu{i:03d}", "gpu": None, "metric": "gpu_count",
             "value": 7 if i in (3, 17) else 8} for i in range(1, 21)]
    code, out, _ = forge("analyze", str(write_jsonl(tmp_path / "m.jsonl", recs)))
    assert code == 1
    line = next(x for x in out.splitlines() if x.startswith("FAIL") and "gpu_count" in x)
    assert "gpu[003,017]" in line and "= 8" in line


def test_malformed_line_refused_or_skipped(tmp_path: Path, forge: Forge) -> None:
    f = tmp_path / "m.jsonl"
    good = "".join(json.dumps(r) + "\n" for r in gpu_fleet())
    f.write_text(good[:200].rsplit("\n", 1)[0] + "\n{\"node\": \"x\"\n" + good)
    code, _, err = forge("analyze", str(f))
    assert code == 2
    assert f"{f}:2: not valid JSON" in err and "Traceback" not in err
    code, out, _ = forge("analyze", str(f), "--skip-bad")
    assert code == 0 and f"skipped {f}:2: not valid JSON" in out
    code, out, err = forge("analyze", str(f), "--skip-bad", "--json")
    assert json.loads(out)["bad_lines"][0]["line"] == 2 and "skipped" in err


def test_bad_inputs_exit_2(tmp_path: Path, forge: Forge) -> None:
    code, _, err = forge("analyze", str(tmp_path / "missing.jsonl"))
    assert code == 2 and "no such file" in err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    code, _, err = forge("analyze", str(empty))
    assert code == 2 and "no measurements" in err


def test_reports_written_and_foreign_files_kept(tmp_path: Path, forge: Forge) -> None:
    f = write_jsonl(tmp_path / "m.jsonl", gpu_fleet())
    mine = tmp_path / "notes.html"
    mine.write_text("my notes")
    code, _, err = forge("analyze", str(f), "--html", str(mine))
    assert code == 2 and "not written by forge analyze" in err
    assert mine.read_text() == "my notes"
    paths = [tmp_path / n for n in ("r.html", "j.xml", "p.prom")]
    for _ in range(2):                             # the second run replaces forge's own files
        code, _, _ = forge("analyze", str(f), "--html", str(paths[0]), "--junit", str(paths[1]),
                           "--prom", str(paths[2]))
        assert code == 0
    assert all(p.stat().st_size > 100 for p in paths)


def test_baseline_flag(tmp_path: Path, forge: Forge) -> None:
    old = gpu_fleet()
    new = gpu_fleet()
    set_value(old, "gpu004", 7, 1.03)
    set_value(new, "gpu004", 7, 0.975)
    code, out, _ = forge("analyze", str(write_jsonl(tmp_path / "new.jsonl", new)), "--baseline",
                         str(write_jsonl(tmp_path / "old.jsonl", old)), "--json")
    assert code == 0
    [entry] = json.loads(out)["flagged"]
    assert (entry["kind"], entry["node"], entry["gpu"], entry["severity"]) == (
        "drift", "gpu004", 7, "warn")

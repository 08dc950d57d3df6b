"""``forge analyze --save-table``: JSON Lines converted once to Parquet/Arrow, the same records
and the same findings when read back; nothing written when the input is refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import gpu_fleet, set_value, write_jsonl

from provision.analyze.load import read_records

pytest.importorskip("pyarrow")
Forge = Callable[..., Any]


def _findings(out: str) -> dict[str, Any]:
    doc = json.loads(out)
    for volatile in ("generated_at", "inputs"):
        doc.pop(volatile, None)
    return doc


def _fleet(tmp_path: Path) -> tuple[Path, Path]:
    """Two JSONL files of one fleet: hbm with a slow GPU, gpu_temperature with a hot one,
    node-level readings and optional fields only some records have."""
    hbm = gpu_fleet(nodes=6)
    set_value(hbm, "gpu004", 3, 0.9)
    temp = gpu_fleet("gpu_temperature", nodes=6, mean=60.0, unit="C", sd_rel=0.02, seed=4)
    set_value(temp, "gpu002", 5, 1.4)
    node = [{"node": f"gpu{n:03d}", "gpu": None, "metric": "gpu_count", "value": 8,
             "expected": 8, "source": "profile"} for n in range(1, 7)]
    node[-1]["value"] = 7
    return (write_jsonl(tmp_path / "a.jsonl", hbm + node),
            write_jsonl(tmp_path / "b.jsonl", temp))


@pytest.mark.parametrize("name", ["fleet.parquet", "fleet.arrow"])
def test_saved_table_round_trips_and_gives_the_same_findings(
        tmp_path: Path, forge: Forge, name: str) -> None:
    a, b = _fleet(tmp_path)
    saved = tmp_path / name
    code, out, err = forge("analyze", str(a), str(b), "--json", "--save-table", str(saved))
    assert code == 1, err  # the slow GPU, the hot one and the missing GPU fail
    assert saved.read_bytes()[:4] in (b"PAR1", b"ARRO")
    want = read_records(a, strict=True) + read_records(b, strict=True)
    assert read_records(saved, strict=True) == want
    code2, out2, _ = forge("analyze", str(saved), "--json")
    assert code2 == 1
    assert _findings(out2) == _findings(out)
    assert {(f["node"], f["metric"]) for f in json.loads(out2)["flagged"]} >= {
        ("gpu004", "hbm_bandwidth"), ("gpu002", "gpu_temperature"), ("gpu006", "gpu_count")}


def test_save_table_keeps_an_existing_file_and_writes_nothing_on_bad_input(
        tmp_path: Path, forge: Forge) -> None:
    a, _ = _fleet(tmp_path)
    saved = tmp_path / "fleet.parquet"
    saved.write_text("mine")
    code, _, err = forge("analyze", str(a), "--save-table", str(saved))
    assert code == 2 and "exists" in err and saved.read_text() == "mine"
    saved.unlink()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(a.read_text() + '{"node": "x", "metric": "m"}\n')
    code, _, err = forge("analyze", str(bad), "--save-table", str(saved))
    assert code == 2 and f"{bad}:" in err
    assert not saved.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl", "b.jsonl", "bad.jsonl"]

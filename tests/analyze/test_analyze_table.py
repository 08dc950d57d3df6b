"""Columnar reading: JSONL through Arrow, Parquet and Arrow IPC give the findings of the record path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_analyze_io import BAD, GOOD

from provision.analyze import analyze, analyze_columns, table
from provision.analyze.table import load_columns, write_table
from provision.errors import InputError
from provision.measurement import BadLine, from_dict, read_dicts
from provision.report.json_report import to_dict

pytest.importorskip("pyarrow")


def _report(result: Any) -> dict[str, Any]:
    d = to_dict(result)
    return {k: d[k] for k in ("flagged", "cohorts_judged", "summary", "nodes")}


def _jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def fleet(synth: Any) -> list[dict[str, Any]]:
    """Every fault class (GPU, node, pair, link, limits), node-level readings, sources."""
    recs = synth.generate(96, seed=12, faults_per_class=1, magnitude=(0.10, 0.12)).records
    out = [r.to_dict() if hasattr(r, "to_dict") else dict(r) for r in recs]
    out[3]["source"] = "vendor datasheet"
    return out


def test_jsonl_parquet_and_arrow_give_the_findings_of_the_record_path(
        tmp_path: Path, fleet: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    def line_by_line(*_: Any) -> None:
        raise AssertionError("a clean file must be read by Arrow, not line by line")

    monkeypatch.setattr(table, "_line_by_line", line_by_line)
    expected = _report(analyze(fleet))
    assert expected["flagged"], "the fleet must have findings to compare"
    f = _jsonl(tmp_path / "m.jsonl", fleet)
    records = [from_dict(r) for r in fleet]
    write_table(tmp_path / "m.parquet", records)
    write_table(tmp_path / "m.arrow", records, fmt="arrow")
    # another writer's file: every field a column, the ones no record has all null
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(fleet, schema=table.schema()), tmp_path / "all.parquet")
    for name in ("m.jsonl", "m.parquet", "m.arrow", "all.parquet"):
        cols, bad, files = load_columns([tmp_path / name], strict=True)
        assert bad == [] and files == [str(tmp_path / name)]
        assert _report(analyze_columns(cols)) == expected, name
    assert f.exists()


def test_several_inputs_are_one_fleet(tmp_path: Path, fleet: list[dict[str, Any]]) -> None:
    half = len(fleet) // 2
    a = _jsonl(tmp_path / "a.jsonl", fleet[:half])
    b = tmp_path / "b.parquet"
    write_table(b, [from_dict(r) for r in fleet[half:]])
    cols, _, _ = load_columns([a, b], strict=True)
    assert _report(analyze_columns(cols)) == _report(analyze(fleet))


@pytest.mark.parametrize(("obj", "why"), BAD)
def test_a_bad_line_is_named_as_the_line_reader_names_it(
        tmp_path: Path, obj: dict[str, Any], why: str) -> None:
    lines = [json.dumps({**GOOD, "gpu": i % 8}) for i in range(50)]
    lines.insert(20, json.dumps(obj))
    f = tmp_path / "m.jsonl"
    f.write_text("\n".join(lines) + "\n")
    want: list[BadLine] = []
    read_dicts(f, bad=want)
    got: list[BadLine] = []
    cols, _, _ = load_columns([f], strict=False)
    cols, got, _ = load_columns([f], strict=False)
    assert [(b.line, b.reason) for b in got] == [(b.line, b.reason) for b in want]
    assert want[0].line == 21 and why in want[0].reason
    assert cols.n == 50
    with pytest.raises(InputError, match=r"m\.jsonl:21: "):
        load_columns([f], strict=True)


def test_a_file_read_in_many_blocks_gives_the_findings_of_one_block(
        tmp_path: Path, fleet: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks are encoded while the next ones are parsed: they come back whole and in order."""
    f = _jsonl(tmp_path / "m.jsonl", fleet)
    one_block = _report(analyze_columns(load_columns([f], strict=True)[0]))

    def line_by_line(*_: Any) -> None:
        raise AssertionError("a clean file must be read by Arrow, not line by line")

    monkeypatch.setattr(table, "_line_by_line", line_by_line)
    monkeypatch.setattr(table, "_BLOCK", 4096)  # dozens of blocks
    assert f.stat().st_size > 20 * 4096
    cols, bad, _ = load_columns([f], strict=True)
    assert bad == [] and cols.n == len(fleet)
    assert _report(analyze_columns(cols)) == one_block == _report(analyze(fleet))


def _late_fields(n: int) -> list[dict[str, Any]]:
    """Records whose last one brings a field (peer) and a fraction (min) the first block's
    records never had: what a directory of one-node logs followed by a two-node one gives."""
    recs: list[dict[str, Any]] = [{**GOOD, "gpu": i % 8, "min": 3000} for i in range(n)]
    recs.append({**GOOD, "node": "gpu002", "peer": "gpu001", "min": 2999.5})
    return recs


def test_a_field_first_met_in_a_late_block_is_read_by_arrow(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def line_by_line(*_: Any) -> None:
        raise AssertionError("a valid file must be read by Arrow, not line by line")

    monkeypatch.setattr(table, "_line_by_line", line_by_line)
    monkeypatch.setattr(table, "_BLOCK", 1024)
    recs = _late_fields(300)
    f = _jsonl(tmp_path / "m.jsonl", recs)
    [t] = table.read_tables([f], strict=True)[0]
    assert t.num_rows == len(recs)
    assert t["peer"].to_pylist() == [None] * 300 + ["gpu001"]
    assert t["min"].to_pylist()[-2:] == [3000.0, 2999.5]


def test_ingest_lines_with_a_field_first_met_in_a_late_block_write_parquet(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``forge ingest auto DIR/* -o fleet.parquet`` of 10,000s of records (the failure was an
    internal error, "unexpected field", past the first 8 MB of records)."""
    import pyarrow.parquet as pq

    monkeypatch.setattr(table, "_BLOCK", 1024)
    recs = _late_fields(300)
    out = tmp_path / "fleet.parquet"
    assert table.write_lines(out, [json.dumps(r) for r in recs]) == len(recs)
    back = pq.read_table(out)
    assert back.num_rows == len(recs)
    assert back["peer"].to_pylist()[-1] == "gpu001"
    assert back["min"].to_pylist()[-1] == 2999.5


@pytest.mark.parametrize(("obj", "why"), BAD)
def test_a_bad_line_in_a_late_block_is_named_as_the_line_reader_names_it(
        tmp_path: Path, obj: dict[str, Any], why: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(table, "_BLOCK", 1024)
    lines = [json.dumps({**GOOD, "gpu": i % 8}) for i in range(400)]
    lines.insert(350, json.dumps(obj))  # past the first dozen blocks
    f = tmp_path / "m.jsonl"
    f.write_text("\n".join(lines) + "\n")
    want: list[BadLine] = []
    read_dicts(f, bad=want)
    cols, got, _ = load_columns([f], strict=False)
    assert [(b.line, b.reason) for b in got] == [(b.line, b.reason) for b in want]
    assert want[0].line == 351 and why in want[0].reason
    assert cols.n == 400


@pytest.mark.parametrize("odd", [b"", b"   ", b"null", b"[1, 2]", b"{not json", b"\xff\xfe",
                                 json.dumps(GOOD).encode() + b" " + json.dumps(GOOD).encode(),
                                 b"  " + json.dumps(GOOD).encode(),
                                 # JSON has no NaN: Arrow reads it, orjson and the line reader
                                 # refuse the line, and say why the same way
                                 b'{"node": "a", "gpu": 0, "metric": "m", "value": NaN}',
                                 b'{"node": "a", "gpu": 0, "metric": "m", "value": -Infinity}'])
def test_odd_lines_fall_back_to_the_line_reader(tmp_path: Path, odd: bytes) -> None:
    good = json.dumps(GOOD).encode()
    f = tmp_path / "m.jsonl"
    f.write_bytes(odd + b"\n" + b"\n".join([good] * 5) + b"\n" + odd + b"\n" + good + b"\n")
    want: list[BadLine] = []
    n = len(read_dicts(f, bad=want))
    cols, got, _ = load_columns([f], strict=False)
    assert cols.n == n
    assert [(b.line, b.reason) for b in got] == [(b.line, b.reason) for b in want]


def _lines_if_objects(data: bytes) -> int | None:
    """What the line count must say: the lines, when each one starts with '{'."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # after a last newline: no line
    return len(lines) if lines and all(ln.startswith(b"{") for ln in lines) else None


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 8, 1 << 20])
def test_line_count_holds_across_chunk_boundaries(tmp_path: Path, chunk: int,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(table, "_COUNT_CHUNK", chunk)
    cases = [b"", b"\n", b"{}", b"{}\n", b"{}\n{}", b"{}\n{}\n", b"{}\n\n{}\n", b" {}\n",
             b"{}\n {}", b"{}\n{}\n ", b"{}\r\n{}\r\n", b'{"a": 1}\n{"b": 22}\n',
             b'{"a": 1}\n{"b": 22}\nx', b'{"a": 1}\n\n', b"{\n{\n{\n{\n{\n", b"{{{\n}"]
    for n, data in enumerate(cases):
        f = tmp_path / f"{n}.jsonl"
        f.write_bytes(data)
        assert table._line_count(f) == _lines_if_objects(data), data


@pytest.mark.parametrize("chunk", [1, 2, 4, 7, 1 << 18])
def test_word_count_holds_across_chunk_boundaries(tmp_path: Path, chunk: int) -> None:
    f = tmp_path / "m.jsonl"
    for data in (b"", b'"gpu"', b'"gp', b'"gpu""gpu"x"gpu"', b'{"gpu": 1}\n{"gpu": null}\n{"gp": 2}\n',
                 b'""gpu""gpu"' * 9, json.dumps(GOOD).encode() * 5):
        f.write_bytes(data)
        assert table._count(f, b'"gpu"', chunk) == data.count(b'"gpu"'), data


def test_bad_rows_of_a_parquet_file_are_named_by_row(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    f = tmp_path / "m.parquet"
    pq.write_table(pa.table({"node": ["a", "", "c"], "metric": ["m", "m", "m"],
                             "value": [1.0, 2.0, None], "gpu": [0, 1, None]}), f)
    cols, bad, _ = load_columns([f], strict=False)
    assert cols.n == 1
    assert [str(b) for b in bad] == [f"{f}:2: field 'node' must be a non-empty string",
                                     f"{f}:3: field 'value' must be a finite number"]
    pq.write_table(pa.table({"node": ["a"], "value": [1.0]}), f)
    with pytest.raises(InputError, match="column 'metric' is required"):
        load_columns([f], strict=True)
    pq.write_table(pa.table({"node": ["a"], "metric": ["m"], "value": ["x"], "gpu": [0]}), f)
    with pytest.raises(InputError, match="column 'value' has type string"):
        load_columns([f], strict=True)


def test_node_level_reading_without_gpu_key_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "m.jsonl"
    node_level = {"node": "a", "gpu": None, "metric": "gpu_count", "value": 8}
    f.write_text(json.dumps(node_level) + "\n" + json.dumps(GOOD) + "\n"
                 + '{"node": "b", "metric": "gpu_count", "value": 8}\n')
    cols, bad, _ = load_columns([f], strict=False)
    assert cols.n == 2 and [(b.line, b.reason.split(" (")[0]) for b in bad] == [
        (3, "field 'gpu' is required")]

"""Reading measurement files: line-checked, fast path and slow path agree with the schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from provision.analyze import load, resolve
from provision.errors import InputError
from provision.measurement import (
    BadLine,
    Measurement,
    iter_records,
    problem,
    read_dicts,
    schema,
    write_records,
)

GOOD = {"node": "gpu001", "gpu": 0, "metric": "hbm_bandwidth", "value": 3350.5, "unit": "GB/s"}
BAD = [
    ({"node": "", "gpu": 0, "metric": "m", "value": 1}, "'node'"),
    ({"node": "a", "gpu": 0, "metric": "m"}, "'value' is required"),
    ({"node": "a", "gpu": 0, "metric": "m", "value": "1"}, "finite number"),
    ({"node": "a", "gpu": 0, "metric": "m", "value": True}, "finite number"),
    ({"node": "a", "metric": "m", "value": 1}, "'gpu' is required"),
    ({"node": "a", "gpu": -1, "metric": "m", "value": 1}, "non-negative"),
    ({"node": "a", "gpu": True, "metric": "m", "value": 1}, "non-negative"),
    ({"node": "a", "gpu": 2**63 - 1, "metric": "m", "value": 1}, "at most 1023"),
    ({"node": "a", "gpu": 0, "metric": "m", "value": 1, "min": "3"}, "'min' must be a number"),
    ({"node": "a", "gpu": 0, "metric": "m", "value": 1, "peer": 5}, "'peer' must be a string"),
    ({"node": "a", "gpu": 0, "metric": "m", "value": 1, "better": "up"}, "'better'"),
]


@pytest.mark.parametrize(("obj", "why"), BAD)
def test_problem_names_the_field_and_schema_agrees(obj: dict, why: str) -> None:
    msg = problem(obj)
    assert msg is not None and why in msg
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(obj, schema())


def test_good_record_passes_both() -> None:
    assert problem(GOOD) is None
    jsonschema.validate(GOOD, schema())


def test_bad_lines_reported_with_line_numbers(tmp_path: Path) -> None:
    f = tmp_path / "m.jsonl"
    lines = [json.dumps(GOOD), "", "{not json", json.dumps({**GOOD, "value": None}),
             "[1, 2]", "\xff".encode("latin-1").decode("latin-1"), json.dumps(GOOD)]
    f.write_bytes("\n".join(lines[:5]).encode() + b"\n\xff\xfe\n" + lines[6].encode() + b"\n")
    bad: list[BadLine] = []
    recs = read_dicts(f, bad=bad)
    assert len(recs) == 2
    assert [(b.line, b.reason.split(" (")[0]) for b in bad] == [
        (3, "not valid JSON"), (4, "field 'value' must be a finite number"),
        (5, "not a JSON object"), (6, "not UTF-8 text")]
    with pytest.raises(InputError, match=r"m\.jsonl:3: not valid JSON"):
        read_dicts(f, strict=True)


def test_nan_and_infinity_refused(tmp_path: Path) -> None:
    f = tmp_path / "m.jsonl"
    f.write_text('{"node":"a","gpu":null,"metric":"m","value":NaN}\n'
                 '{"node":"a","gpu":null,"metric":"m","value":1e999}\n')
    bad: list[BadLine] = []
    assert read_dicts(f, bad=bad) == []
    assert [b.line for b in bad] == [1, 2]


def test_records_round_trip(tmp_path: Path) -> None:
    recs = [Measurement(node="gpu001", metric="gpu_count", value=8.0, check="inventory"),
            Measurement(node="gpu001", metric="hbm_bandwidth", value=3350.0, gpu=3, min=3000.0)]
    f = tmp_path / "out.jsonl"
    assert write_records(f, recs) == 2
    assert list(iter_records(f)) == recs
    assert read_dicts(f)[0]["gpu"] is None


def test_run_directory_and_missing_inputs(tmp_path: Path) -> None:
    run = tmp_path / "run1"
    run.mkdir()
    with pytest.raises(InputError, match=r"must hold measurements\.jsonl"):
        resolve(run)
    (run / "measurements.jsonl").write_text(json.dumps(GOOD) + "\n")
    assert resolve(run) == run / "measurements.jsonl"
    with pytest.raises(InputError, match="no such file"):
        resolve(tmp_path / "nope.jsonl")
    records, bad, files = load([run], strict=True)
    assert records == [GOOD] and bad == [] and files == [str(run / "measurements.jsonl")]

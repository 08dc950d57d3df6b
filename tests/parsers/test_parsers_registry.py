"""Every real fixture is claimed by the right parser and yields valid records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from parsers_support import REAL, all_fixture_files

from provision import measurement, metrics, parsers
from provision.errors import InputError

FILES = all_fixture_files()


def _tool(path: Path) -> str:
    return path.parent.name


def test_fixture_tree_present() -> None:
    if not REAL.is_dir():
        pytest.skip(f"{REAL} not present (set FORGE_REAL_FIXTURES)")
    assert len([p for p in FILES if REAL in p.parents]) >= 85


def test_every_fixture_folder_is_a_parser() -> None:
    folders = {p.parent.name for p in FILES}
    assert folders <= set(parsers.names()), folders - set(parsers.names())


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_auto_detects_the_folder_tool(path: Path) -> None:
    assert parsers.detect_tool(path.read_text(encoding="utf-8")) == _tool(path)


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_fixture_parses_to_valid_records(path: Path) -> None:
    recs = parsers.ingest_text("auto", path.read_text(encoding="utf-8"), node="node-given",
                               source_name=path.name)
    for r in recs:
        assert measurement.problem(json.loads(r.to_json())) is None, r
        assert metrics.info(r.metric) is not None, f"unregistered metric {r.metric}"
        assert r.check == _tool(path)


def test_get_unknown_tool_is_input_error() -> None:
    with pytest.raises(InputError, match="unknown tool"):
        parsers.get("iperf")


def test_structured_results_are_frozen() -> None:
    res = parsers.get("ibstat").parse("CA 'mlx5_0'\n\tCA type: MT4129\n", node="n",
                                      source_name="x")
    with pytest.raises(AttributeError):
        res.node = "other"

"""Shared helpers for the parser tests: where the real fixtures live and how to read them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from provision.measurement import Measurement

#: outputs other people published (../shared/fixtures/real), plus our own extra ones
REAL = Path(os.environ.get("FORGE_REAL_FIXTURES",
                           Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "real"))
EXTRA = Path(__file__).resolve().parent / "fixtures"


def fixture_text(rel: str) -> str:
    for base in (REAL, EXTRA):
        path = base / rel
        if path.exists():
            return path.read_text(encoding="utf-8")
    pytest.skip(f"fixture {rel} not found under {REAL} (set FORGE_REAL_FIXTURES)")


def all_fixture_files() -> list[Path]:
    files = [p for base in (REAL, EXTRA) if base.is_dir()
             for p in sorted(base.glob("*/*.txt"))]
    return files


def pick(records: list[Measurement], metric: str, **match: object) -> list[Measurement]:
    """Records of ``metric`` whose fields equal ``match`` (``detail_has`` matches a substring)."""
    has = match.pop("detail_has", None)
    out = [r for r in records if r.metric == metric
           and all(getattr(r, k) == v for k, v in match.items())]
    if has is not None:
        out = [r for r in out if r.detail and str(has) in r.detail]
    return out


def one(records: list[Measurement], metric: str, **match: object) -> Measurement:
    got = pick(records, metric, **match)
    assert len(got) == 1, f"{metric} {match}: {len(got)} records: {got}"
    return got[0]

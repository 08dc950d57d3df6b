"""Shared test helpers: the repository root, the examples and the shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "inventory" / "examples"
SHARED = ROOT.parent / "shared"
REAL_FIXTURES = SHARED / "fixtures" / "real"


@pytest.fixture
def root() -> Path:
    return ROOT

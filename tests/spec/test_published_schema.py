"""The JSON Schema published in docs/ is the one `forge schema` prints."""

from __future__ import annotations

import json
from pathlib import Path

from provision.spec.schema import site_schema

DOCS = Path(__file__).resolve().parents[2] / "docs" / "site-spec.schema.json"


def test_docs_schema_is_the_code_schema() -> None:
    assert json.loads(DOCS.read_text()) == site_schema(), \
        "docs/site-spec.schema.json is stale: forge schema -o docs/site-spec.schema.json"

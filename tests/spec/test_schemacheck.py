"""provision.spec.schemacheck against jsonschema itself: the same verdict (and the same
failing paths and keywords) on every example spec and every fuzzed mutation."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from provision.spec.loader import _apply_defaults
from provision.spec.schema import site_schema
from provision.spec.schemacheck import iter_errors

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "site-specs").glob("*.yaml"))
VALIDATOR = jsonschema.Draft202012Validator(site_schema())


def _key(errors: Any) -> list[tuple[tuple[Any, ...], str]]:
    return sorted((tuple(e.absolute_path), e.validator) for e in errors)


def _mutations() -> list[tuple[str, Any]]:
    from fuzz.test_fuzz_specs import REFUSED, SMALL

    out = []
    for name, (mutate, _) in sorted(REFUSED.items()):
        doc = copy.deepcopy(SMALL)
        mutate(doc)
        out.append((name, doc))
    extra = {"port-string": ("access", "port", "22"), "mtu-huge": ("networks", "management",
                                                                   {"subnet": "x", "mtu": 99999}),
             "unknown-key": ("cluster", "colour", "blue"), "gpu-count-bool": ("cluster", "name",
                                                                              True)}
    for name, (a, b, value) in extra.items():
        doc = copy.deepcopy(SMALL)
        doc[a][b] = value
        out.append((name, doc))
    return out


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_agree(path: Path) -> None:
    doc = _apply_defaults(yaml.safe_load(path.read_text()))
    assert _key(iter_errors(doc, site_schema())) == _key(VALIDATOR.iter_errors(doc)) == []


@pytest.mark.parametrize(("name", "doc"), _mutations(), ids=lambda x: x if isinstance(x, str)
                         else "")
def test_mutations_agree(name: str, doc: Any) -> None:
    merged = _apply_defaults(doc)
    ours = _key(iter_errors(merged, site_schema()))
    theirs = _key(VALIDATOR.iter_errors(merged))
    assert ours == theirs


def test_unknown_keyword_is_refused() -> None:
    with pytest.raises(ValueError, match="not supported"):
        list(iter_errors({}, {"type": "object", "patternProperties": {}}))

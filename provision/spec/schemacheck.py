"""Check a document against the site spec's JSON Schema, without the jsonschema library.

The site schema (:mod:`provision.spec.schema`) uses a small part of JSON Schema
2020-12; importing ``jsonschema`` (with ``referencing`` and every metaschema)
costs more than all of `forge validate`'s own work. This checker implements
exactly that part, with errors shaped like jsonschema's (``validator``,
``absolute_path``, ``instance``, ``schema``, ``context``), refuses a schema
that uses anything else, and ``tests/spec/test_schemacheck.py`` holds it to
jsonschema's verdicts on every example and fuzzed spec.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

Path_ = tuple[str | int, ...]
KNOWN = frozenset({
    "$schema", "$id", "title", "description", "type", "properties", "additionalProperties",
    "required", "enum", "const", "pattern", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "minItems", "maxItems", "items", "oneOf", "minLength", "maxLength",
})


@dataclass
class SchemaError:
    validator: str
    validator_value: Any
    instance: Any
    schema: dict[str, Any]
    message: str
    path: Path_ = ()
    context: list[SchemaError] = field(default_factory=list)

    @property
    def absolute_path(self) -> deque[str | int]:
        return deque(self.path)


_PLAIN = {"string": str, "boolean": bool, "object": dict, "array": list, "null": type(None)}


def _is_type(value: Any, kind: str) -> bool:
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _PLAIN[kind])


@lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _short(value: Any) -> str:
    return "should be non-empty" if not value else "is too short"


def iter_errors(instance: Any, schema: dict[str, Any], path: Path_ = ()) -> Iterator[SchemaError]:
    """Every way ``instance`` breaks ``schema`` (what jsonschema's iter_errors reports)."""
    unknown = set(schema) - KNOWN
    if unknown:
        raise ValueError(f"schema keyword(s) {sorted(unknown)} not supported by schemacheck")

    def err(kw: str, message: str, at: Path_ = path, **extra: Any) -> SchemaError:
        return SchemaError(kw, schema[kw], instance, schema, message, at, **extra)

    kinds = schema.get("type")
    if kinds is not None:
        wanted = kinds if isinstance(kinds, list) else [kinds]
        if not any(_is_type(instance, k) for k in wanted):
            yield err("type", f"{instance!r} is not of type {', '.join(map(repr, wanted))}")
            return
    if "const" in schema and instance != schema["const"]:
        yield err("const", f"{schema['const']!r} was expected")
    if "enum" in schema and instance not in schema["enum"]:
        yield err("enum", f"{instance!r} is not one of {schema['enum']!r}")
    number = isinstance(instance, (int, float)) and not isinstance(instance, bool)
    if number:
        if "minimum" in schema and instance < schema["minimum"]:
            yield err("minimum", f"{instance!r} is less than the minimum of "
                                 f"{schema['minimum']!r}")
        if "maximum" in schema and instance > schema["maximum"]:
            yield err("maximum", f"{instance!r} is greater than the maximum of "
                                 f"{schema['maximum']!r}")
        if "exclusiveMinimum" in schema and instance <= schema["exclusiveMinimum"]:
            yield err("exclusiveMinimum", f"{instance!r} is less than or equal to the minimum "
                                          f"of {schema['exclusiveMinimum']!r}")
        if "exclusiveMaximum" in schema and instance >= schema["exclusiveMaximum"]:
            yield err("exclusiveMaximum", f"{instance!r} is greater than or equal to the "
                                          f"maximum of {schema['exclusiveMaximum']!r}")
    if isinstance(instance, str):
        if "minLength" in schema and len(instance) < schema["minLength"]:
            yield err("minLength", f"{instance!r} {_short(instance)}")
        if "maxLength" in schema and len(instance) > schema["maxLength"]:
            yield err("maxLength", f"{instance!r} is too long")
        if "pattern" in schema and not _regex(schema["pattern"]).search(instance):
            yield err("pattern", f"{instance!r} does not match {schema['pattern']!r}")
    if isinstance(instance, list):
        if "minItems" in schema and len(instance) < schema["minItems"]:
            yield err("minItems", f"{instance!r} {_short(instance)}")
        if "maxItems" in schema and len(instance) > schema["maxItems"]:
            yield err("maxItems", f"{instance!r} is too long")
        if "items" in schema:
            for i, item in enumerate(instance):
                yield from iter_errors(item, schema["items"], (*path, i))
    if isinstance(instance, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", ()):
            if name not in instance:
                yield err("required", f"{name!r} is a required property")
        for name, value in instance.items():
            if name in props:
                yield from iter_errors(value, props[name], (*path, name))
        extra = [k for k in instance if k not in props]
        more = schema.get("additionalProperties", True)
        if extra and more is False:
            yield err("additionalProperties", "Additional properties are not allowed "
                      f"({', '.join(map(repr, extra))} unexpected)")
        elif extra and isinstance(more, dict):
            for name in extra:
                yield from iter_errors(instance[name], more, (*path, name))
    if "oneOf" in schema:
        results = [list(iter_errors(instance, sub, path)) for sub in schema["oneOf"]]
        passing = sum(1 for r in results if not r)
        if passing != 1:
            context = [e for r in results for e in r]
            why = "is not valid under any of" if not passing else "is valid under more than one of"
            yield err("oneOf", f"{instance!r} {why} the given schemas", context=context)

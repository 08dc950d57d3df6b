"""Load a site spec: YAML -> migrate -> apply preset -> schema -> cross-field rules -> Site."""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from provision.errors import SpecError
from provision.fsutil import read_input_text
from provision.gcutil import paused_gc
from provision.spec.build import build_site
from provision.spec.migrate import VersionProblem, migrate
from provision.spec.model import Site
from provision.spec.presets import DEFAULT_VERSIONS, preset
from provision.spec.profiles import deep_merge, suggest
from provision.spec.schema import site_schema
from provision.spec.schemacheck import SchemaError, iter_errors
from provision.spec.yamlsrc import Located, load_located

MAX_SPEC_BYTES = 64 * 1024 * 1024


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    return site_schema()


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _schema_message(err: SchemaError) -> tuple[tuple[str | int, ...], str]:
    path = tuple(err.absolute_path)
    v = err.validator
    if v == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(set(err.instance) - set(allowed))
        key = extra[0]
        return path + (key,), (f"unknown key '{key}'{suggest(key, allowed)}; allowed: "
                               f"{', '.join(allowed)}")
    if v == "required":
        return path, err.message.replace("is a required property", "is required")
    if v == "type" and len(path) >= 2 and path[-2] == "versions":
        return path, (f"expected a quoted string, got {_describe(err.instance)}: write "
                      f"versions in quotes ('12.10'), an unquoted 12.10 is the number 12.1")
    if v == "type" and len(path) >= 2 and path[-2] == "bios_baseline":
        return path, (f"expected a quoted string, got {_describe(err.instance)}: write the "
                      f"value as the BMC shows it, in quotes ('Off'); YAML reads an unquoted "
                      f"Off as false")
    if v == "pattern" and path and path[-1] == "env":
        return path, (f"{_describe(err.instance)} is not an environment variable name "
                      f"(letters, digits and _, not starting with a digit)")
    if v == "pattern" and path and path[-1] in ("file", "vault", "key"):
        return path, (f"{_describe(err.instance)}: a secret's path or key may not contain "
                      f"quotes, braces, backslashes or control characters")
    if v == "type":
        want = err.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        return path, f"expected {want}, got {_describe(err.instance)}"
    if v == "enum":
        return path, (f"{_describe(err.instance)} is not one of "
                      f"{', '.join(map(str, err.validator_value))}")
    if v == "const":
        return path, f"must be {err.validator_value!r}, got {_describe(err.instance)}"
    if v == "oneOf" and path and path[-1] == "password":
        for sub in err.context or ():
            if sub.validator == "pattern":  # the right shape with a hostile name in it
                return _schema_message(sub)
        return path, ("must be a reference, never the secret itself: {env: VAR}, "
                      "{file: PATH} (mode 0600) or {vault: PATH, key: NAME}")
    if v == "pattern":
        return path, f"{_describe(err.instance)} does not match the expected form"
    return path, err.message


def _apply_defaults(doc: dict[str, Any]) -> dict[str, Any]:
    size = doc.get("cluster", {}).get("size", "custom") if isinstance(
        doc.get("cluster"), dict) else "custom"
    merged = deep_merge(preset(size) if isinstance(size, str) else {}, doc)
    stack = merged.get("stack")
    if isinstance(stack, dict):
        versions = stack.get("versions", {})
        if isinstance(versions, dict):
            stack["versions"] = {**DEFAULT_VERSIONS, **versions}
    return merged


def validate_document(located: Located, base_dir: Path) -> Site:
    doc = located.data
    if not isinstance(doc, dict):
        raise SpecError([f"{located.where(())}: the site spec must be a mapping"])
    try:
        doc, _ = migrate(doc)
    except VersionProblem as exc:
        raise SpecError([located.problem(("spec_version",), str(exc))]) from None
    merged = _apply_defaults(doc)
    errors = sorted(iter_errors(merged, _schema()), key=lambda e: list(map(str, e.path)))
    if errors:
        problems = []
        for err in errors:
            path, message = _schema_message(err)
            problems.append(located.problem(path, message))
        raise SpecError(list(dict.fromkeys(problems)))
    with paused_gc():  # millions of long-lived objects: no collection passes over them
        site, problems = build_site(merged, located, base_dir)
    if problems or site is None:
        raise SpecError(problems)
    return site


def load_site_text(text: str, source: str = "<spec>", base_dir: Path | None = None) -> Site:
    """The site of a spec's text; the Site keeps the text, so nothing reads the file again."""
    site = validate_document(load_located(text, source), base_dir or Path.cwd())
    return replace(site, text=text)


def load_site(path: str | Path) -> Site:
    """Load the spec at ``path`` (``-``: standard input)."""
    text = read_input_text(path, MAX_SPEC_BYTES, "site spec")
    base = Path.cwd() if str(path) == "-" else Path(path).resolve().parent
    return load_site_text(text, "<stdin>" if str(path) == "-" else str(path), base)

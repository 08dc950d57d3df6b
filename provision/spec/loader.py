"""Load a site spec: YAML -> migrate -> apply preset -> schema -> cross-field rules -> Site."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

from provision.errors import InputError, SpecError
from provision.gcutil import paused_gc
from provision.spec.build import build_site
from provision.spec.migrate import VersionProblem, migrate
from provision.spec.model import Site
from provision.spec.presets import DEFAULT_VERSIONS, preset
from provision.spec.profiles import deep_merge, suggest
from provision.spec.schema import site_schema
from provision.spec.yamlsrc import Located, load_located

MAX_SPEC_BYTES = 64 * 1024 * 1024


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(site_schema())


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _schema_message(err: jsonschema.ValidationError) -> tuple[tuple[str | int, ...], str]:
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
    errors = sorted(_validator().iter_errors(merged), key=lambda e: list(map(str, e.path)))
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
    return validate_document(load_located(text, source), base_dir or Path.cwd())


def load_site(path: str | Path) -> Site:
    p = Path(path)
    try:
        if p.stat().st_size > MAX_SPEC_BYTES:
            raise InputError(f"{p}: larger than {MAX_SPEC_BYTES // 2**20} MiB; not a site spec")
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{p}: is a directory, expected a site spec file") from None
    except UnicodeDecodeError:
        raise InputError(f"{p}: not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"{p}: {exc.strerror}") from None
    return load_site_text(text, str(path), p.resolve().parent)

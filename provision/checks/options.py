"""A check's options: a frozen dataclass per check, each field typed, with a default,
a unit and a description; the CLI's ``--option CHECK.NAME=VALUE`` is validated here.

A check declares ``Options = SomeOptions`` (see :mod:`provision.checks.base`);
the engine hands the check an instance in ``Context.options``. Every field
is read by its check (a test runs each check with sentinel values and fails
on a field nothing reads), so an option that does nothing cannot exist.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import NoneType, UnionType
from typing import Any

from provision.errors import InputError


def option(default: Any, *, help: str, unit: str = "", choices: Sequence[Any] = (),
           pattern: str = "") -> Any:
    """A dataclass field of a check's options; ``choices`` restricts each comma-separated
    item of a ``str`` (or the value of an ``int``), ``pattern`` is a regular expression
    the whole text must match."""
    return dataclasses.field(default=default, metadata={
        "help": help, "unit": unit, "choices": tuple(choices), "pattern": pattern})


@dataclass(frozen=True)
class NoOptions:
    """The options of a check that takes none."""


@dataclass(frozen=True)
class OptionInfo:
    name: str
    type: str           # "int", "float", "str", "bool"
    optional: bool      # None is allowed (then the check's default applies)
    default: Any
    unit: str
    help: str
    choices: tuple[Any, ...]
    pattern: str

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        choices = f", one of {','.join(map(str, self.choices))}" if self.choices else ""
        default = "" if self.default is None else f" (default {self.default}{unit})"
        return f"{self.name}=<{self.type}{unit}{choices}>{default}: {self.help}"


def _base_type(hint: Any) -> tuple[type, bool]:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, UnionType) and args:
        rest = [a for a in args if a is not NoneType]
        if len(rest) != 1:
            raise TypeError(f"option type {hint} is not one type or None")
        return rest[0], NoneType in args
    return hint, False


def fields(options_type: type) -> list[OptionInfo]:
    """The options a check declares, in declaration order."""
    hints = typing.get_type_hints(options_type)
    out = []
    for f in dataclasses.fields(options_type):
        base, optional = _base_type(hints[f.name])
        meta = f.metadata
        out.append(OptionInfo(f.name, base.__name__, optional, f.default, meta.get("unit", ""),
                              meta.get("help", ""), tuple(meta.get("choices", ())),
                              meta.get("pattern", "")))
    return out


def _convert(check: str, info: OptionInfo, value: Any) -> Any:
    where = f"check {check}: option {info.name}"
    if value is None:
        if info.optional:
            return None
        raise InputError(f"{where}: a value is required")
    want = {"int": int, "float": float, "str": str, "bool": bool}[info.type]
    if isinstance(value, str) and want is not str:
        text = value.strip()
        try:
            if want is bool:
                if text.lower() not in ("true", "false", "yes", "no", "1", "0"):
                    raise ValueError(text)
                value = text.lower() in ("true", "yes", "1")
            else:
                value = want(text)
        except ValueError:
            raise InputError(f"{where}: expected {info.type}"
                             f"{' (' + info.unit + ')' if info.unit else ''}, got {value!r}",
                             hint=info.describe()) from None
    elif want is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, want) or (want is not bool and isinstance(value, bool)):
        raise InputError(f"{where}: expected {info.type}, got {value!r}", hint=info.describe())
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        raise InputError(f"{where}: must not be negative, got {value!r}")
    if info.pattern and not re.fullmatch(info.pattern, str(value)):
        raise InputError(f"{where}: {value!r} is not of the form {info.pattern}",
                         hint=info.describe())
    if info.choices:
        items = [v.strip() for v in value.split(",")] if isinstance(value, str) else [value]
        bad = [v for v in items if v not in info.choices]
        if bad or not items:
            raise InputError(f"{where}: {', '.join(map(str, bad)) or repr(value)} is not one "
                             f"of {', '.join(map(str, info.choices))}")
    return value


def build(check: str, options_type: type, values: Mapping[str, Any]) -> Any:
    """An options instance from ``values`` (text from the command line, or typed)."""
    known = {i.name: i for i in fields(options_type)}
    given = {}
    for raw_name, value in values.items():
        name = raw_name.replace("-", "_")
        if name not in known:
            names = ", ".join(known) or "none"
            raise InputError(f"check {check}: unknown option {raw_name!r}",
                             hint=f"its options: {names} (forge check --list)")
        given[name] = _convert(check, known[name], value)
    return options_type(**given)


def parse_assignments(texts: Iterable[str]) -> dict[str, dict[str, str]]:
    """``CHECK.NAME=VALUE`` words (as ``--option`` takes them) by check, then option."""
    out: dict[str, dict[str, str]] = {}
    for text in texts:
        key, eq, value = text.partition("=")
        check, dot, name = key.strip().partition(".")
        if not eq or not dot or not check or not name:
            raise InputError(f"--option {text!r}: expected CHECK.NAME=VALUE",
                             hint="e.g. --option sdc.burnin_seconds=600 (forge check --list)")
        out.setdefault(check, {})[name.strip()] = value
    return out


def as_dict(options: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(options) and not isinstance(options, type):
        return dataclasses.asdict(options)
    return {}

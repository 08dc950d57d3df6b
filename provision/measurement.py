"""The measurement record: one JSON object per line (JSON Lines); see docs/measurements.md.

This module owns the record type, its JSON Schema and reading/writing files of
records. Reading is line-checked: a malformed line is reported with its line
number and either skipped or refused, never a traceback.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from operator import attrgetter
from pathlib import Path
from typing import Any

from provision.errors import InputError
from provision.fsutil import atomic_open

try:  # orjson parses a 20 MB file of records several times faster than the stdlib
    import orjson

    _loads: Callable[[bytes | str], Any] = orjson.loads
    _orjson_dumps: Callable[[Any], bytes] | None = orjson.dumps
    _DecodeError: tuple[type[Exception], ...] = (orjson.JSONDecodeError, UnicodeDecodeError)
except ImportError:  # pragma: no cover - orjson is a declared dependency
    _loads = json.loads
    _orjson_dumps = None
    _DecodeError = (json.JSONDecodeError, UnicodeDecodeError)

SCHEMA_VERSION = 1
#: a GPU index beyond any real node (NVML counts a node's GPUs in an unsigned int)
MAX_GPU_INDEX = 1023
_OPTIONAL_STR = ("unit", "model", "peer", "check", "ts", "source", "serial", "uuid", "detail",
                 "profile", "better", "bus_id", "vbios", "node_serial")
_OPTIONAL_NUM = ("min", "max", "expected")

#: the forms a file of records takes, each with its suffix: JSON Lines (the public
#: format), or the columnar Parquet / Arrow IPC that provision.analyze.table writes
TABLE_FORMATS = {"jsonl": ".jsonl", "parquet": ".parquet", "arrow": ".arrow"}
RUN_STEM = "measurements"  # a run directory's records: measurements.<suffix>


def run_file(fmt: str) -> str:
    """The name of a run directory's measurements file in format ``fmt``."""
    return RUN_STEM + TABLE_FORMATS[fmt]


def format_of(path: Path) -> str:
    """The format a file name asks for: ``.parquet`` and ``.arrow`` by suffix, else JSONL."""
    suffix = Path(path).suffix.lower()
    return next((f for f, s in TABLE_FORMATS.items() if s == suffix), "jsonl")


# not frozen: a frozen dataclass's __init__ costs 6x more, and ingest builds 100,000s of
# records; nothing in forge assigns to a record after it is made
@dataclass(slots=True)
class Measurement:
    node: str
    metric: str
    value: float
    gpu: int | None = None
    unit: str | None = None
    better: str | None = None
    min: float | None = None
    max: float | None = None
    model: str | None = None
    peer: str | None = None
    check: str | None = None
    ts: str | None = None
    expected: float | None = None
    source: str | None = None
    serial: str | None = None
    uuid: str | None = None
    detail: str | None = None
    profile: str | None = None
    #: the part's identity as a vendor asks for it: PCI bus id, VBIOS, the node's serial
    bus_id: str | None = None
    vbios: str | None = None
    node_serial: str | None = None

    def to_dict(self) -> dict[str, Any]:
        # one C call reads every slot: dataclasses.asdict deep-copies every field (slow)
        d = {k: v for k, v in zip(_SORTED_FIELDS, _get_sorted(self), strict=True)
             if v is not None}
        d["gpu"] = self.gpu  # required key: null for node-level measurements
        return d

    def to_json(self) -> str:
        return _dumps(self.to_dict())


FIELD_NAMES = frozenset(f.name for f in fields(Measurement))
_SORTED_FIELDS = tuple(sorted(FIELD_NAMES))
_get_sorted = attrgetter(*_SORTED_FIELDS)


def _dumps(d: Any) -> str:
    """Compact JSON with sorted keys (the keys are already in sorted order)."""
    return _orjson_dumps(d).decode() if _orjson_dumps else json.dumps(d, separators=(",", ":"))


#: where a line template's text goes, inside a string field (see :func:`line_template`)
HOLE = "\x00"
_VALUE_HOLE = "\x00value\x00"


def line_template(record: Measurement) -> tuple[str, str, str]:
    """``record.to_json()`` cut where :data:`HOLE` stands in one of its string fields and
    where its value goes: ``(a, b, c)`` such that ``a + json_text(text) + b + number + c``
    is the line of the same record with ``text`` for the hole and the value whose JSON is
    ``number`` (:func:`json_numbers`). A writer of 100,000s of records that differ only
    there joins strings instead of building a record each. No other field may hold a NUL
    (tool output with one is refused before it gets here)."""
    d = record.to_dict()
    d["value"] = _VALUE_HOLE  # keeps its place among the keys
    text = _dumps(d)
    ab, c = _cut(text, _dumps(_VALUE_HOLE))
    a, b = _cut(ab, json_text(HOLE))
    return a, b, c


def _cut(text: str, at: str) -> tuple[str, str]:
    parts = text.split(at)
    if len(parts) != 2:
        raise ValueError(f"a line template needs exactly one {at!r} in {text!r}")
    return parts[0], parts[1]


def json_text(text: str) -> str:
    """``text`` as a written record spells it inside a JSON string (escaped, unquoted)."""
    return _dumps(text)[1:-1]


def json_numbers(values: list[float]) -> list[str]:
    """Each value as a written record spells it (one serialiser call for them all)."""
    return _dumps(values)[1:-1].split(",") if values else []


def schema() -> dict[str, Any]:
    from importlib import resources  # only here: it costs an import on every forge start

    text = resources.files("provision.schemas").joinpath("measurement.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


_STR = "string"
_NUM = "number"
_KEY_KIND: dict[str, str] = {**{k: _STR for k in _OPTIONAL_STR}, **{k: _NUM for k in _OPTIONAL_NUM}}


_STR_KEYS = frozenset(k for k, kind in _KEY_KIND.items() if kind is _STR)
_NUM_KEYS = frozenset(k for k, kind in _KEY_KIND.items() if kind is _NUM)


def _plainly_valid(obj: Any) -> bool:
    """A quick yes for the common record; False means 'ask problem()', not 'invalid'."""
    if type(obj) is not dict:
        return False
    node = obj.get("node")
    metric = obj.get("metric")
    if type(node) is not str or not node or type(metric) is not str or not metric:
        return False
    v: Any = obj.get("value")
    tv = type(v)
    if tv is float:
        if v - v != 0.0:  # nan or infinity
            return False
    elif tv is not int:
        return False
    if "gpu" not in obj:
        return False
    g = obj["gpu"]
    if g is not None and (type(g) is not int or not 0 <= g <= MAX_GPU_INDEX):
        return False
    for k, x in obj.items():
        if x is None:
            continue
        if k in _STR_KEYS:
            if type(x) is not str:
                return False
        elif k in _NUM_KEYS and type(x) is not float and type(x) is not int:
            return False
    b = obj.get("better")
    return b is None or b in ("higher", "lower", "equal")


def problem(obj: Any) -> str | None:
    """Why ``obj`` is not a valid record (same rules as the JSON Schema), or None."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    for key in ("node", "metric"):
        v = obj.get(key)
        if not isinstance(v, str) or not v:
            return f"field '{key}' must be a non-empty string"
    if "value" not in obj:
        return "field 'value' is required"
    v = obj["value"]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return "field 'value' must be a finite number"
    if "gpu" not in obj:
        return "field 'gpu' is required (an integer GPU index, or null)"
    g = obj["gpu"]
    if g is not None and (isinstance(g, bool) or not isinstance(g, int)
                          or not 0 <= g <= MAX_GPU_INDEX):
        return f"field 'gpu' must be a non-negative integer (at most {MAX_GPU_INDEX}) or null"
    # only the keys present are looked at: records carry a handful of the optional fields
    for key, x in obj.items():
        kind = _KEY_KIND.get(key)
        if kind is None or x is None:
            continue
        if kind is _NUM:
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                return f"field '{key}' must be a number"
        elif not isinstance(x, str):
            return f"field '{key}' must be a string"
    b = obj.get("better")
    if b is not None and b not in ("higher", "lower", "equal"):
        return "field 'better' must be 'higher', 'lower' or 'equal'"
    return None


def from_dict(obj: dict[str, Any]) -> Measurement:
    """Build a record from a valid object; unknown keys are ignored (forward compatible)."""
    kw = {k: obj[k] for k in FIELD_NAMES if k in obj}
    kw["value"] = float(kw["value"])
    return Measurement(**kw)


def from_json(line: str) -> Measurement:
    """The record a JSON line written by :meth:`Measurement.to_json` holds."""
    return from_dict(_loads(line))


@dataclass(frozen=True)
class BadLine:
    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


def _open_bytes(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except IsADirectoryError:
        raise InputError(f"cannot read {path}: is a directory") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def decode_problem(exc: Exception) -> str:
    """Why a line is not a record's JSON, as every reader of JSON Lines says it."""
    msg = getattr(exc, "msg", None) or str(exc)
    if isinstance(exc, UnicodeDecodeError) or "utf-8" in msg.lower():
        return "not UTF-8 text"
    col = getattr(exc, "colno", None)
    return f"not valid JSON ({msg}, column {col})" if col else f"not valid JSON ({msg})"


def read_dicts(path: Path, *, strict: bool = False,
               bad: list[BadLine] | None = None) -> list[dict[str, Any]]:
    """All valid records of a JSONL file as plain dicts (the fast path for bulk readers).

    Bad lines go to ``bad`` or, when strict, raise :class:`InputError` naming file and line.
    """
    data = _open_bytes(path)
    objs: list[Any] = []
    linenos: list[int] = []
    problems: list[BadLine] = []
    for lineno, line in enumerate(data.split(b"\n"), 1):
        if not line or line.isspace():
            continue
        try:
            objs.append(_loads(line))
            linenos.append(lineno)
        except _DecodeError as exc:
            problems.append(BadLine(str(path), lineno, decode_problem(exc)))
    good = []
    for lineno, obj in zip(linenos, objs, strict=True):
        why = None if _plainly_valid(obj) else problem(obj)
        if why is None:
            good.append(obj)
        else:
            problems.append(BadLine(str(path), lineno, why))
    settle(problems, strict=strict, bad=bad)
    return good


def settle(problems: list[BadLine], *, strict: bool, bad: list[BadLine] | None) -> None:
    """Refuse the first bad line (strict) or hand them all, in line order, to ``bad``."""
    problems.sort(key=lambda b: b.line)
    if problems:
        if strict:
            raise InputError(str(problems[0]), hint="use --skip-bad to skip malformed lines")
        if bad is not None:
            bad.extend(problems)


def iter_dicts(path: Path, *, strict: bool = False,
               bad: list[BadLine] | None = None) -> Iterator[dict[str, Any]]:
    """Yield the valid records of a JSONL file as plain dicts; see :func:`read_dicts`."""
    yield from read_dicts(path, strict=strict, bad=bad)


def iter_records(path: Path, *, strict: bool = False,
                 bad: list[BadLine] | None = None) -> Iterator[Measurement]:
    """Yield records from a JSONL file; bad lines go to ``bad`` or, when strict, raise."""
    for obj in iter_dicts(path, strict=strict, bad=bad):
        yield from_dict(obj)


def write_records(path: Path, records: Iterable[Measurement]) -> int:
    """Write records atomically; returns how many."""
    n = 0
    with atomic_open(Path(path)) as f:
        for r in records:
            f.write(r.to_json())
            f.write("\n")
            n += 1
    return n

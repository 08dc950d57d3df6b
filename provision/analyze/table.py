"""Measurement files -> :class:`Columns` through Apache Arrow, without a Python object per record.

Three inputs give the same columns: JSON Lines (parsed block by block by Arrow's
JSON reader, strings dictionary-encoded per block), Parquet and Arrow IPC files
(``write_table`` writes both; checks and sweeps can produce them directly).

JSON Lines keeps the line-checked semantics of :func:`provision.measurement.read_dicts`:
every row is validated in bulk, and a row that fails is looked up by its line and
explained by :func:`provision.measurement.problem`, so the message is the same one
line naming the file and line. When Arrow's reader cannot take the file as it is
(a line that is not a JSON object, a field of the wrong type, blank lines,
non-UTF-8 bytes), the file is read the line-by-line way instead, which names every
bad line; only the speed differs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from provision.analyze.columns import DIRECTION_CODE, Cohort, Columns, make_cohort
from provision.analyze.load import resolve
from provision.analyze.units import normalize_table
from provision.errors import InputError
from provision.measurement import (
    _NUM_KEYS,
    _STR_KEYS,
    MAX_GPU_INDEX,
    BadLine,
    Measurement,
    decode_problem,
    format_of,
    problem,
    read_dicts,
    run_file,
    settle,
    write_records,
)

if TYPE_CHECKING:
    import pyarrow as pa

PARQUET_MAGIC = b"PAR1"
ARROW_MAGIC = b"ARROW1"
_BLOCK = 8 << 20          # bytes per JSON block: large enough to amortise, small for memory
_SCAN = 64 << 20          # bytes per chunk when finding where the lines start
#: bytes per chunk of the line count: its temporaries stay in the CPU's cache (0.27 s for
#: 649 MB here, against 0.9 s with 64 MiB chunks)
_COUNT_CHUNK = 1 << 20
_REQUIRED = ("node", "metric", "value", "gpu")
_ORDER = ("node", "metric", "value", "gpu", *sorted(_STR_KEYS | _NUM_KEYS))


def _pa() -> Any:
    try:
        import pyarrow
        import pyarrow.compute
        import pyarrow.json
        import pyarrow.parquet
    except ImportError:  # pragma: no cover - pyarrow is a declared dependency
        raise InputError("reading measurement tables needs pyarrow",
                         hint="pip install pyarrow") from None
    return pyarrow


def schema() -> pa.Schema:
    """The canonical table: required fields first, then every optional field of a record."""
    pa = _pa()
    types = {"node": pa.string(), "metric": pa.string(), "value": pa.float64(),
             "gpu": pa.int64(), **{k: pa.string() for k in _STR_KEYS},
             **{k: pa.float64() for k in _NUM_KEYS}}
    return pa.schema([(k, types[k]) for k in _ORDER])


# --- reading ---------------------------------------------------------------------------

def load_columns(paths: Sequence[Path], *, strict: bool, save_as: Path | None = None
                 ) -> tuple[Columns, list[BadLine], list[str]]:
    """Columns of every input (JSONL, Parquet or Arrow), the bad lines skipped, the files read.

    ``save_as``: also write the inputs' valid records, as they were read, to one Parquet
    (or ``.arrow``) table, so that the next analysis of them reads that instead.
    """
    tables, bad, files = read_tables(paths, strict=strict)
    if save_as is not None:
        write_table(save_as, _concat(tables))
    units: dict[str, str | None] = {}
    normal = [normalize_table(t, f, units) for t, f in zip(tables, files, strict=True)]
    return columns_from_table(_concat(normal)), bad, files


def read_tables(paths: Sequence[Path], *,
                strict: bool) -> tuple[list[pa.Table], list[BadLine], list[str]]:
    """Every input (a file, or a run directory's measurements) as a canonical table, as
    written (units not converted); the bad lines skipped; the files read."""
    _pa()  # a clear message when pyarrow is missing, before any file is read
    tables: list[Any] = []
    bad: list[BadLine] = []
    files: list[str] = []
    for p in paths:
        f = resolve(p)
        files.append(str(f))
        tables.append(read_table(f, strict=strict, bad=bad))
    return tables, bad, files


def is_columnar(path: Path) -> bool:
    """Whether a file is Parquet or Arrow IPC (by its first bytes, not its name)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return False  # read_table names the problem
    return _columnar_head(head)


def _columnar_head(head: bytes) -> bool:
    """Whether a file's first bytes are Parquet's or Arrow IPC's magic."""
    return head.startswith(PARQUET_MAGIC) or head.startswith(ARROW_MAGIC)


def read_rows(path: Path, *, strict: bool, bad: list[BadLine] | None = None
              ) -> list[dict[str, Any]]:
    """The valid rows of a measurements file as records (only the fields a row has)."""
    rows = read_table(path, strict=strict, bad=bad).to_pylist()
    return [{k: v for k, v in r.items() if v is not None or k == "gpu"} for r in rows]


def _concat(tables: list[pa.Table]) -> pa.Table:
    """One table; a column some of the tables lack is null in their rows."""
    if len(tables) == 1:
        return tables[0]
    return _pa().concat_tables(tables, promote_options="default").unify_dictionaries()


def read_table(path: Path, *, strict: bool, bad: list[BadLine] | None = None) -> pa.Table:
    """One measurement file as a canonical table (strings dictionary-encoded)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except IsADirectoryError:
        raise InputError(f"cannot read {path}: is a directory") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    problems: list[BadLine] = []
    if _columnar_head(head):
        table = _checked(path, _read_columnar(path, head), problems, jsonl=False)
    else:
        table = _read_jsonl(path, problems)
    settle(problems, strict=strict, bad=bad)
    return table


def _read_columnar(path: Path, head: bytes) -> pa.Table:
    pa = _pa()
    try:
        if head.startswith(PARQUET_MAGIC):
            wanted = _parquet_columns(path)
            strings = [k for k in wanted if k in _STR_KEYS or k in ("node", "metric")]
            raw = pa.parquet.read_table(path, columns=wanted, read_dictionary=strings)
        else:
            with pa.memory_map(str(path)) as src:
                raw = pa.ipc.open_file(src).read_all()
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet/Arrow file ({exc})") from None
    return _canonical(path, raw)


def _parquet_columns(path: Path) -> list[str]:
    """The columns of a Parquet file worth reading: required ones, and optional ones that
    hold a value in some row (by the row groups' null counts; read when unknown)."""
    pa = _pa()
    meta = pa.parquet.ParquetFile(path).metadata
    nulls: dict[str, int] = {}
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            col = group.column(c)
            stats = col.statistics
            known = stats is not None and stats.has_null_count
            nulls[col.path_in_schema] = nulls.get(col.path_in_schema, 0) + (
                stats.null_count if known else -1 - meta.num_rows)
    return [k for k, n in nulls.items() if k in _REQUIRED or n != meta.num_rows]


def _canonical(path: Path, raw: pa.Table) -> pa.Table:
    """``raw`` with the canonical types; one line naming a missing or odd column.

    Optional columns that hold no value are left out (they would cost memory per row):
    :func:`column` answers None for them.
    """
    pa = _pa()
    out = {}
    names = set(raw.column_names)
    for field in schema():
        k = field.name
        if k not in names or (k not in _REQUIRED and raw[k].null_count == raw.num_rows):
            if k in _REQUIRED and k != "gpu":
                raise InputError(f"{path}: column '{k}' is required")
            if k == "gpu":
                out[k] = pa.nulls(raw.num_rows, field.type)
            continue
        col = raw[k]
        t = col.type
        if pa.types.is_dictionary(t):
            t = t.value_type
        ok = (pa.types.is_string(t) or pa.types.is_large_string(t)
              if field.type == pa.string()
              else pa.types.is_integer(t) if k == "gpu"
              else pa.types.is_integer(t) or pa.types.is_floating(t))
        if not (ok or pa.types.is_null(t)):
            raise InputError(f"{path}: column '{k}' has type {col.type}, expected {field.type}")
        out[k] = _dictionary(col) if field.type == pa.string() else col.cast(field.type)
    return pa.table(out)


def column(table: pa.Table, name: str) -> Any:
    """A column of a canonical table, or None where no row has a value for it."""
    return table[name] if name in table.column_names else None


def _dictionary(col: Any) -> Any:
    pa = _pa()
    want = pa.dictionary(pa.int32(), pa.string())
    if col.type == want:
        return col
    if pa.types.is_dictionary(col.type):
        return col.cast(want)
    return pa.compute.dictionary_encode(col.cast(pa.string()))


def _line_count(path: Path) -> int | None:
    """How many lines the file has, or None unless every line opens a JSON object at its
    first byte.

    That rules out blank lines, indented lines and lines that are not objects, so when
    Arrow gives as many rows as there are lines, rows and lines correspond one to one.
    Numpy counts, chunk by chunk, keeping nothing per line: the lines' offsets are found
    only when a row has to be explained (:func:`_line_starts`).
    """
    lines = 0
    at_start = True  # the next byte starts a line
    with open(path, "rb", buffering=0) as fh:
        buf = bytearray(_COUNT_CHUNK)
        while n := fh.readinto(buf):
            a = np.frombuffer(buf, dtype=np.uint8, count=n)
            if at_start and a[0] != 0x7B:  # "{"
                return None
            nl = a == 0x0A
            ends = int(np.count_nonzero(nl))
            at_start = bool(nl[-1])
            # every newline but one that ends the chunk is followed by "{"
            if ends - at_start != int(np.count_nonzero(nl[:-1] & (a[1:] == 0x7B))):
                return None
            lines += ends
    if not at_start:
        lines += 1  # the last line has no newline
    return lines if lines > 0 else None


def _line_starts(path: Path) -> np.ndarray:
    """Byte offset of every line of a file :func:`_line_count` vouched for."""
    starts: list[np.ndarray] = [np.zeros(1, dtype=np.int64)]
    pos = 0
    with open(path, "rb", buffering=0) as fh:
        buf = bytearray(_SCAN)
        while n := fh.readinto(buf):
            a = np.frombuffer(buf, dtype=np.uint8, count=n)
            starts.append(np.flatnonzero(a == 0x0A) + (pos + 1))
            pos += n
    out = np.concatenate(starts)
    return out[out < pos]  # not the end of the file after a last newline


def _read_jsonl(path: Path, problems: list[BadLine]) -> pa.Table:
    pa = _pa()
    lines = _line_count(path)
    table = None
    if lines is not None:
        try:
            table = _arrow_jsonl(path)
        except (pa.ArrowException, UnicodeDecodeError):
            table = None
    if table is None or table.num_rows != lines:
        return _line_by_line(path, problems)
    return _checked(path, table, problems, jsonl=True)


def _arrow_jsonl(source: Path | BinaryIO, name: Path | None = None) -> pa.Table:
    """A JSON Lines file (or seekable stream) through Arrow's reader, strings
    dictionary-encoded block by block; raises ArrowException where the reader cannot take
    it as it is (a value of the wrong type: the line reader then names its line).

    Arrow's streaming reader takes the fields other than those it is told from the first
    block only: it refuses a block where another field first appears ("unexpected field",
    for example a ``peer`` first met after 8 MB) or whose number does not fit the type the
    first block gave. The file is then read again with every field of a record typed, which
    holds for any valid file but costs a third more (4.6 against 3.4 s for 4M records here:
    each absent field is a null per row), so it is not the first try.
    """
    pa = _pa()
    name = name or Path(str(source))
    pj = pa.json
    quick = pj.ParseOptions(explicit_schema=pa.schema([
        ("node", pa.string()), ("metric", pa.string()), ("value", pa.float64()),
        ("gpu", pa.int64()), ("ts", pa.string())]))  # ts: else inferred as a timestamp
    try:
        return _arrow_blocks(source, name, quick)
    except pa.ArrowInvalid:
        if not isinstance(source, Path):
            source.seek(0)
        typed = pj.ParseOptions(explicit_schema=schema(), unexpected_field_behavior="ignore")
        return _arrow_blocks(source, name, typed)  # unknown keys: ignored, as the line reader does


def _arrow_blocks(source: Path | BinaryIO, name: Path, parse: Any) -> pa.Table:
    """The canonical table of Arrow's reading of ``source`` with ``parse`` options.

    Each block is encoded by one thread while Arrow parses the next on its own threads
    (the encoding releases the GIL): 4M records (649 MB) in 3.4 s here, against 4.3 s
    one block after the other, and never more than two blocks parsed but not encoded.
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    pa = _pa()
    tables: list[Any] = []  # canonical tables, one a block
    with ThreadPoolExecutor(1, thread_name_prefix="forge-encode") as encoder, \
            pa.json.open_json(source, read_options=pa.json.ReadOptions(block_size=_BLOCK),
                              parse_options=parse) as reader:
        pending: Future[Any] | None = None
        for batch in reader:
            if pending is not None:
                tables.append(pending.result())  # the block before: an error is raised here
            pending = encoder.submit(_encoded_block, name, batch)
        if pending is not None:
            tables.append(pending.result())
    if not tables:
        return _canonical(name, pa.table({k: pa.nulls(0, f.type) for k, f in
                                          zip(_ORDER, schema(), strict=True)}))
    return _concat(tables)


def _encoded_block(name: Path, batch: Any) -> pa.Table:
    """One block of Arrow's JSON reader as a canonical table, its strings dictionary-encoded;
    ArrowInvalid for a field whose type the first block inferred wrongly for a record (a
    string field holding numbers, say: the line reader names those lines)."""
    pa = _pa()
    pc = pa.compute
    cols = {}
    for k, col in zip(batch.schema.names, batch.columns, strict=True):
        if k in _STR_KEYS or k in ("node", "metric"):
            if not (pa.types.is_string(col.type) or pa.types.is_null(col.type)):
                raise pa.ArrowInvalid(f"field {k} is not a string")
            cols[k] = pc.dictionary_encode(col)
        elif k in _NUM_KEYS:
            if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)
                    or pa.types.is_null(col.type)):
                raise pa.ArrowInvalid(f"field {k} is not a number")
            cols[k] = col
        elif k in ("value", "gpu"):
            cols[k] = col
    return _canonical(name, pa.table(cols))


def _line_by_line(path: Path, problems: list[BadLine]) -> pa.Table:
    pa = _pa()
    good = read_dicts(path, strict=False, bad=problems)
    return _canonical(path, pa.Table.from_pylist(good, schema=schema()))


def _checked(path: Path, table: pa.Table, problems: list[BadLine], *,
             jsonl: bool) -> pa.Table:
    """``table`` without its invalid rows; each one explained in ``problems``.

    From JSONL (one row per line), a row is explained from its own line, so a null ``gpu``
    that was really a missing key is caught too; otherwise rows are numbered from 1.
    """
    pa = _pa()
    pc = pa.compute
    if table.num_rows == 0:
        return table
    suspect = _suspects(table)
    if jsonl:
        no_gpu = _np(pc.is_null(table["gpu"]), bool)
        if no_gpu.any() and _count(path, b'"gpu"') < table.num_rows:
            suspect |= no_gpu  # some line may lack the required key: look at each
    rows = np.flatnonzero(suspect)
    if rows.size == 0:
        return table
    drop = []
    lines = _line_starts(path) if jsonl else None
    for i, why in zip(rows.tolist(), _explain(path, table, rows, lines), strict=True):
        if why is not None:
            drop.append(i)
            problems.append(BadLine(str(path), i + 1, why))  # one row per line, checked before
    if not drop:
        return table
    keep = np.ones(table.num_rows, dtype=bool)
    keep[drop] = False
    return table.filter(pa.array(keep))


def _count(path: Path, needle: bytes, chunk: int = 1 << 18) -> int:
    """Occurrences of ``needle`` in a file: numpy compares it byte by byte, in chunks that
    keep the temporaries in cache (0.57 s for 649 MB here; ``bytes.count`` takes 1.15 s
    for a needle such as ``"gpu"``, whose bytes are everywhere in JSON). Overlapping
    occurrences count each (``bytes.count`` counts them once): a key in JSON that Arrow
    read cannot overlap itself."""
    pattern = np.frombuffer(needle, dtype=np.uint8)
    n = 0
    tail = np.zeros(0, dtype=np.uint8)  # the last bytes of the chunk before: too few for one
    with open(path, "rb", buffering=0) as fh:
        buf = bytearray(chunk)
        while k := fh.readinto(buf):
            a = np.concatenate((tail, np.frombuffer(buf, dtype=np.uint8, count=k)))
            starts = a.size - pattern.size + 1  # where a whole needle may start
            if starts > 0:
                hit = a[:starts] == pattern[0]
                for j in range(1, pattern.size):
                    hit &= a[j:j + starts] == pattern[j]
                n += int(np.count_nonzero(hit))
            tail = a[max(0, starts):]
    return n


def _suspects(table: pa.Table) -> np.ndarray:
    """Rows the quick bulk checks cannot vouch for (a superset of the invalid ones)."""
    s = np.zeros(table.num_rows, dtype=bool)
    for k in ("node", "metric"):  # required, non-empty
        s |= _flagged(table[k], lambda v: not v, null=True)
    value = table["value"]
    s |= ~np.isfinite(_np(value, np.float64, fill=np.nan))  # null, nan or infinite
    gpu = _np(table["gpu"], np.int64, fill=0)
    s |= (gpu < 0) | (gpu > MAX_GPU_INDEX)
    better = column(table, "better")
    if better is not None:
        s |= _flagged(better, lambda v: v not in DIRECTION_CODE, null=False)
    return s


def _flagged(col: Any, bad: Any, *, null: bool) -> np.ndarray:
    """Rows of a dictionary column whose value ``bad`` says yes to (judged once per value)."""
    pa = _pa()
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    flags = np.array([bool(bad(v)) for v in arr.dictionary.to_pylist()] + [null], dtype=bool)
    return flags[_np(arr.indices, np.int64, fill=-1)]


def _explain(path: Path, table: pa.Table, rows: np.ndarray,
             lines: np.ndarray | None) -> Iterator[str | None]:
    if lines is None:
        for rec in table.take(rows).to_pylist():
            yield problem(rec)
        return
    import orjson

    with open(path, "rb") as fh:
        for i in rows.tolist():
            fh.seek(int(lines[i]))
            line = fh.readline()
            try:
                yield problem(orjson.loads(line))
            except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:  # what Arrow took and
                yield decode_problem(exc)  # orjson does not (NaN): as the line reader says it


def _np(arr: Any, dtype: type, *, fill: Any = None) -> np.ndarray:
    """An Arrow array as numpy, nulls replaced by ``fill`` (no copy to fill when none)."""
    if fill is not None and arr.null_count:
        arr = _pa().compute.fill_null(arr, fill)
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=dtype)


# --- table -> columns ------------------------------------------------------------------

def _codes(col: Any, n: int) -> tuple[np.ndarray, list[Any]]:
    """Dictionary indices (-1 for null) and the dictionary, in order of first appearance;
    ``col`` None (no values) is ``n`` nulls."""
    pa = _pa()
    if col is None:
        return np.full(n, -1, dtype=np.int32), []
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if not pa.types.is_dictionary(arr.type):
        arr = pa.compute.dictionary_encode(arr)
    idx = _np(arr.indices, np.int32, fill=-1)
    values = arr.dictionary.to_pylist()
    order = _first_rows(idx, len(values))[1]
    if order.size == len(values) and np.array_equal(order, np.arange(order.size)):
        return idx, values  # already numbered by first appearance
    remap = np.full(len(values) + 1, -1, dtype=np.int32)  # remap[-1] stays -1: null
    remap[order] = np.arange(order.size, dtype=np.int32)
    return remap[idx], [values[j] for j in order.tolist()]


def _first_rows(codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Of the codes ``0..k-1`` (``-1``: none) that occur: the row where each first occurs,
    and the codes, both in order of first appearance."""
    first = np.full(k + 1, codes.shape[0], dtype=np.int64)  # slot k: the -1s, dropped
    first[codes[::-1]] = np.arange(codes.shape[0] - 1, -1, -1)  # the earliest row lands last
    used = np.flatnonzero(first[:k] < codes.shape[0])
    order = used[np.argsort(first[used], kind="stable")]
    return first[order], order


def columns_from_table(table: pa.Table) -> Columns:
    """The same columns :func:`~provision.analyze.columns.build_columns` makes from records."""
    pa = _pa()
    pc = pa.compute
    n = table.num_rows
    node, nodes = _codes(table["node"], n)
    peer, peers = _codes(column(table, "peer"), n)
    gpu = _np(table["gpu"], np.int32, fill=-1)
    pair_of_peer = np.array([2 if ":" in p else 1 for p in peers] + [0], dtype=np.int64)
    pair = pair_of_peer[peer]  # -1 indexes the trailing 0: not a pair
    parts = [_codes(column(table, k), n) for k in ("metric", "model", "profile", "check")]
    key = np.zeros(n, dtype=np.int64)
    for code, values in parts:
        key = key * (len(values) + 1) + (code.astype(np.int64) + 1)
    key = (key * 2 + (gpu >= 0)) * 3 + pair
    # cohorts numbered by first appearance, as build_columns numbers them
    cohort, keys = _codes(pc.dictionary_encode(pa.array(key)), n)
    firsts = _first_rows(cohort, len(keys))[0].tolist()
    names = {k: (code, values) for k, (code, values) in
             zip(("metric", "model", "profile", "check"), parts, strict=True)}
    unit_code, units = _codes(column(table, "unit"), n)
    better_code, betters = _codes(column(table, "better"), n)

    def at(code: np.ndarray, values: list[Any], i: int) -> Any:
        c = int(code[i])
        return None if c < 0 else values[c]

    cohorts: list[Cohort] = []
    for c, i in enumerate(firsts):
        cohorts.append(make_cohort(
            c, at(*names["metric"], i), model=at(*names["model"], i),
            profile=at(*names["profile"], i), check=at(*names["check"], i),
            gpu_level=bool(gpu[i] >= 0), pair=("", "node", "gpu")[int(pair[i])],
            unit=at(unit_code, units, i), better=at(better_code, betters, i)))
    return Columns(
        value=_np(table["value"], np.float64), node=node, gpu=gpu, cohort=cohort,
        lo=_numbers(column(table, "min"), n), hi=_numbers(column(table, "max"), n),
        expected=_numbers(column(table, "expected"), n),
        peer=peer, nodes=tuple(nodes), peers=tuple(peers), cohorts=tuple(cohorts),
        records=_Rows(table))


def _numbers(col: Any, n: int) -> np.ndarray:
    """A numeric column as float64, nan where a row has no value."""
    if col is None:
        return np.full(n, np.nan)
    return _np(col, np.float64, fill=np.nan)


class _Rows(Sequence[Mapping[str, Any]]):
    """Rows of a table as records, for the few fields a finding quotes."""

    def __init__(self, table: pa.Table) -> None:
        self._table = table

    def __len__(self) -> int:
        return int(self._table.num_rows)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        return _Row(self._table, int(i) % len(self))


class _Row(Mapping[str, Any]):
    """One row, each field read from its column only when asked for (not a copy of the row)."""

    def __init__(self, table: pa.Table, i: int) -> None:
        self._table, self._i = table, i

    def __getitem__(self, name: str) -> Any:
        col = column(self._table, name)
        value = None if col is None else col[self._i].as_py()
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return (k for k in self._table.column_names if k in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


# --- writing ---------------------------------------------------------------------------

def write_table(path: Path, records: Sequence[Measurement | Mapping[str, Any]] | pa.Table, *,
                fmt: str | None = None) -> int:
    """Write records (or a canonical table) as a Parquet or Arrow IPC file, atomically;
    returns how many. ``fmt`` defaults to what the name's suffix says (``.arrow``), else
    Parquet."""
    from provision.fsutil import atomic_open

    pa = _pa()
    fmt = fmt or ("arrow" if format_of(path) == "arrow" else "parquet")
    if fmt not in ("parquet", "arrow"):
        raise InputError(f"unknown table format {fmt!r}: use parquet or arrow")
    if isinstance(records, pa.Table):
        table = records
    else:
        rows = [r.to_dict() if isinstance(r, Measurement) else r for r in records]
        table = _canonical(Path(path), pa.Table.from_pylist(rows, schema=schema()))
    with atomic_open(Path(path), binary=True) as f:
        if fmt == "parquet":
            pa.parquet.write_table(table, f, compression="zstd")
        else:
            with pa.ipc.new_file(f, table.schema) as w:
                w.write_table(table)
    return int(table.num_rows)


def write_measurements(run_dir: Path, records: Sequence[Measurement], fmt: str = "jsonl") -> int:
    """Write a run directory's records as ``measurements.<suffix>`` in ``fmt``
    (``TABLE_FORMATS``), atomically; returns how many."""
    path = Path(run_dir) / run_file(fmt)
    if fmt == "jsonl":
        return write_records(path, records)
    return write_table(path, records, fmt=fmt)


def write_lines(path: Path, lines: Sequence[str], fmt: str = "parquet") -> int:
    """Write measurement JSON lines (forge's own, already checked) as a Parquet or Arrow
    file, atomically; returns how many."""
    import io

    if not lines:
        return write_table(path, [], fmt=fmt)
    data = io.BytesIO("\n".join(lines).encode())
    return write_table(path, _arrow_jsonl(data, Path(path)), fmt=fmt)

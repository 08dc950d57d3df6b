"""The SQLite history store: measurements by node, GPU serial/UUID, metric and time.

Several writers at once are normal here (a cron sweep overlapping a Slurm
health check, a fleet of nodes pushing results), so:

- the database runs in WAL mode (readers never block the writer),
- every connection sets ``busy_timeout`` so SQLite waits for a lock itself,
- every write is one ``BEGIN IMMEDIATE`` transaction, retried with jittered
  backoff on SQLITE_BUSY/LOCKED until a deadline, so a sweep's rows land
  all together or not at all, and none is lost to a lock.

Opening is careful too: a reader (``readonly=True``) opens the file read-only
and never writes a byte (it works in a directory the user cannot write); a
file that is not forge's (another application's SQLite database, a text
file) is refused before anything is changed in it; a damaged database is
reported in one line naming the file, which is kept as it is; every
statement of the set-up honours the same lock deadline as a write.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from provision.errors import CommandTimeout, InputError
from provision.history import schema
from provision.history.timeparse import from_iso

if TYPE_CHECKING:
    from provision.measurement import Measurement

T = TypeVar("T")
DEFAULT_DB = Path("/var/lib/forge/history.db")


def default_db() -> Path:
    """The history store: ``$FORGE_HISTORY_DB``, else /var/lib/forge/history.db."""
    env = os.environ.get("FORGE_HISTORY_DB")
    return Path(env) if env else DEFAULT_DB

_BUSY_CODES = {5, 6, 261, 262, 517}  # SQLITE_BUSY, _LOCKED and their extended codes
#: names bound in one ``IN (...)`` list (SQLite before 3.32 allows 999 variables a statement)
_IN_CHUNK = 500


class HistoryBusy(CommandTimeout):
    """The store stayed locked past the retry deadline."""


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    started: float
    kind: str = "sweep"              # sweep | local | push | import
    origin: str | None = None        # host that wrote it
    profile: str | None = None
    nodes: str | None = None         # folded node set
    status: str | None = None
    finished: float | None = None


@dataclass(frozen=True)
class Sample:
    ts: float
    node: str
    metric: str
    value: float
    gpu: int | None = None
    serial: str | None = None
    uuid: str | None = None
    unit: str | None = None
    check: str | None = None
    detail: str | None = None
    run_id: str | None = None
    agg: str = "raw"
    n: int = 1
    vmin: float | None = None
    vmax: float | None = None


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code in _BUSY_CODES
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _damaged(path: Path, exc: sqlite3.DatabaseError) -> InputError:
    return InputError(f"{path}: history database is damaged ({exc}); the file is kept as it is",
                      hint="restore it from a backup, or move it away to start a new one")


def _foreign(path: Path) -> str | None:
    """Why the existing file at ``path`` is not a forge history database (None: it is)."""
    if path.stat().st_size == 0:
        return None  # a database another process is creating right now
    try:
        probe = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.Error as exc:
        return f"cannot be read ({exc})"
    try:
        tables = {r[0] for r in probe.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.OperationalError as exc:
        if _is_busy(exc):
            return None  # locked by a writer: a forge database being written, most likely
        return f"not an SQLite database ({exc})"
    except sqlite3.DatabaseError as exc:
        return f"not an SQLite database ({exc})"
    finally:
        probe.close()
    if tables and "schema_version" not in tables:
        return f"another application's database (tables {', '.join(sorted(tables)[:5])})"
    return None


class HistoryStore:
    """One connection to a history database; use as a context manager."""

    def __init__(self, path: Path | str, *, busy_timeout_s: float = 10.0,
                 retry_deadline_s: float = 120.0, readonly: bool = False) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self.retry_deadline_s = retry_deadline_s
        self.readonly = readonly
        if readonly and not self.path.exists():
            raise InputError(f"{self.path}: no history database here",
                             hint="run a sweep with --db PATH first, or pass the right --db")
        if self.path.exists():
            why = _foreign(self.path)
            if why:
                raise InputError(f"{self.path}: not a forge history database: {why}; "
                                 f"left untouched", hint="pass the right --db")
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = self._connect(readonly)
        try:
            if readonly and self._retry(self.version) < schema.LATEST and self._writable():
                # an older forge's store: upgraded once, in place, then read as usual
                self.conn.close()
                self.conn = self._connect(False)
                self._configure()
                self._migrate()
                self.conn.close()
                self.conn = self._connect(True)
            if readonly:
                self._check_version()
            else:
                self._configure()
                self._migrate()
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
                raise HistoryBusy(f"{self.path}: database stayed locked") from None
            raise InputError(f"{self.path}: not a usable forge history database ({exc})") \
                from None

    # --- connection set-up -------------------------------------------------
    def _connect(self, readonly: bool) -> sqlite3.Connection:
        target = f"{self.path.resolve().as_uri()}?mode=ro" if readonly else str(self.path)
        try:
            return sqlite3.connect(target, timeout=self.busy_timeout_s, uri=readonly,
                                   isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise InputError(f"{self.path}: cannot open history database: {exc}") from None

    def _writable(self) -> bool:
        """The file and its directory (WAL and journal files live there) can be written."""
        return os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK)

    def _configure(self) -> None:
        c = self.conn
        c.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
        # only takes effect on a new, empty database; lets compaction give pages back
        self._retry(lambda: c.execute("PRAGMA auto_vacuum = INCREMENTAL"))
        self._retry(lambda: c.execute("PRAGMA journal_mode = WAL").fetchone())
        c.execute("PRAGMA synchronous = NORMAL")

    def _migrate(self) -> None:
        self._retry(lambda: self.conn.execute(schema.VERSION_TABLE))
        for m in schema.MIGRATIONS:
            if self.version() >= m.version:
                continue

            def apply(cur: sqlite3.Connection, m: schema.Migration = m) -> None:
                # re-read inside the lock: another process may have just migrated
                if self._version(cur) >= m.version:
                    return
                for stmt in m.statements:
                    cur.execute(stmt)
                cur.execute("INSERT INTO schema_version VALUES (?, ?, ?)",
                            (m.version, m.description, time.time()))

            self.transaction(apply)
        self._check_version()

    def _check_version(self) -> None:
        v = self._retry(self.version)
        if v < schema.LATEST:
            raise InputError(f"{self.path}: history schema version {v} was written by an "
                             f"older forge; reading needs version {schema.LATEST}",
                             hint="let a user who can write it open it once (any forge "
                                  "command with this --db) to upgrade it in place")
        if v > schema.LATEST:
            raise InputError(f"{self.path}: history schema version {v} is newer than this "
                             f"forge understands ({schema.LATEST})", hint="upgrade forge")

    @staticmethod
    def _version(c: sqlite3.Connection) -> int:
        row = c.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def version(self) -> int:
        return self._version(self.conn)

    # --- transactions ------------------------------------------------------
    def _retry(self, fn: Callable[[], T]) -> T:
        deadline = time.monotonic() + self.retry_deadline_s
        delay = 0.01
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    if _is_busy(exc):
                        raise HistoryBusy(
                            f"{self.path}: database stayed locked for "
                            f"{self.retry_deadline_s:g} s", hint="another writer holds it; "
                            "check for a stuck process") from None
                    raise
                import random  # only once a lock is met

                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.5)

    def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` inside BEGIN IMMEDIATE ... COMMIT, retried as a whole on BUSY."""
        def attempt() -> T:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                result = fn(self.conn)
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            return result
        return self._retry(attempt)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self.close()
        if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
            raise _damaged(self.path, exc) from None

    # --- writing -----------------------------------------------------------
    def record(self, run: RunInfo, records: Iterable[Measurement]) -> int:
        """Store a run and its measurements in one transaction; returns the rows written."""
        recs = list(records)

        def write(c: sqlite3.Connection) -> int:
            c.execute(
                "INSERT INTO runs (run_id, started, finished, kind, origin, profile, nodes, "
                "status) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(run_id) DO UPDATE SET "
                "finished=excluded.finished, status=excluded.status",
                (run.run_id, run.started, run.finished, run.kind, run.origin, run.profile,
                 run.nodes, run.status))
            names = _Interned(c)
            run_no = names.name(run.run_id)
            seen: dict[tuple[int, int, int], int] = {}
            rows = []
            for r in recs:
                key = (names.name(r.metric), _ms(from_iso(r.ts, run.started)), names.series(r))
                seq = seen.get(key, -1) + 1
                seen[key] = seq
                rows.append((*key, run_no, seq, r.value, r.detail))
            insert = ("INSERT INTO readings (metric, ts, series, run, seq, value, detail) "
                      "VALUES (?,?,?,?,?,?,?)")
            try:
                c.execute("SAVEPOINT bulk")
                c.executemany(insert, rows)
                c.execute("RELEASE bulk")
            except sqlite3.IntegrityError:  # the same run recorded again: keep both readings
                c.execute("ROLLBACK TO bulk")
                c.execute("RELEASE bulk")
                for row in rows:
                    c.execute(insert[:-len("VALUES (?,?,?,?,?,?,?)")] + "SELECT ?,?,?,?, "
                              "COALESCE((SELECT MAX(seq) + 1 FROM readings WHERE metric = ? "
                              "AND ts = ? AND series = ? AND run = ?), 0), ?, ?",
                              (*row[:4], *row[:4], *row[5:]))
            return len(rows)
        return self.transaction(write)

    def log_action(self, run_id: str | None, node: str, action: str, reason: str,
                   outcome: str) -> None:
        self.transaction(lambda c: c.execute(
            "INSERT INTO actions (ts, run_id, node, action, reason, outcome) "
            "VALUES (?,?,?,?,?,?)", (time.time(), run_id, node, action, reason, outcome)))

    # --- streaks (the drain/resume policy's memory) ------------------------
    def streaks(self, node: str) -> dict[str, int]:
        rows = self.conn.execute("SELECT key, count FROM streaks WHERE node = ?", (node,))
        return {k: int(n) for k, n in rows}

    def set_streaks(self, node: str, counts: dict[str, int], run_id: str | None) -> None:
        """Replace a node's streak counters with ``counts`` (keys absent are reset)."""
        now = time.time()

        def write(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM streaks WHERE node = ?", (node,))
            c.executemany(
                "INSERT INTO streaks (node, key, count, last_run, updated) VALUES (?,?,?,?,?)",
                [(node, k, n, run_id, now) for k, n in sorted(counts.items()) if n > 0])
        self.transaction(write)

    # --- reading -----------------------------------------------------------
    def samples(self, *, nodes: Sequence[str] | None = None, metric: str | None = None,
                since: float | None = None, until: float | None = None,
                uuid: str | None = None, limit: int | None = None) -> list[Sample]:
        """Samples in time order, filtered by node list, metric, GPU UUID and time."""
        src, cond, args = _where(nodes, metric, since, until, uuid)
        sql = ("SELECT r.ts / 1000.0, s.node, m.name, r.value, s.gpu, s.serial, s.uuid, s.unit, "
               "s.check_name, r.detail, rn.name, COALESCE(r.agg, 'raw'), COALESCE(r.n, 1), "
               f"r.vmin, r.vmax FROM{src} JOIN series s ON s.id = r.series "
               "JOIN names m ON m.id = r.metric LEFT JOIN names rn ON rn.id = r.run"
               f"{cond} ORDER BY r.ts, r.series, r.run, r.seq")
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [Sample(*row) for row in self.conn.execute(sql, args)]

    def values(self, *, metric: str, nodes: Sequence[str] | None = None,
               since: float | None = None) -> tuple[dict[int, tuple[str, int | None, str | None]],
                                                     Collection[Any], Collection[Any]]:
        """The narrow fetch behind a trend: series identities, then series ids and values.

        Only the two columns a sparkline needs cross from SQLite to Python, in time order
        (the clustering order of a fleet-wide query: no sort). Up to ``NUMPY_ROWS`` rows
        come back as lists; a larger result streams straight into two numpy arrays, with
        no Python object kept per reading.
        """
        from provision.history.trend import NUMPY_ROWS

        src, cond, args = _where(nodes, metric, since, None, None)
        cur = self.conn.execute(f"SELECT r.series, r.value FROM{src}{cond} ORDER BY r.ts", args)
        head = cur.fetchmany(NUMPY_ROWS)
        sids: Collection[Any]
        vals: Collection[Any]
        if len(head) < NUMPY_ROWS:
            sids, vals = [r[0] for r in head], [r[1] for r in head]
            ids = sorted(set(sids))
        else:
            import numpy as np

            flat = np.fromiter(itertools.chain.from_iterable(itertools.chain(head, cur)),
                               dtype=np.float64).reshape(-1, 2)
            sids, vals = flat[:, 0].astype(np.int64), np.ascontiguousarray(flat[:, 1])
            ids = np.unique(sids).tolist()
        ident: dict[int, tuple[str, int | None, str | None]] = {}
        for chunk in range(0, len(ids), 900):
            part = ids[chunk:chunk + 900]
            ident.update((i, (node, gpu, unit)) for i, node, gpu, unit in self.conn.execute(
                f"SELECT id, node, gpu, unit FROM series WHERE id IN ({','.join('?' * len(part))})",
                part))
        return ident, sids, vals

    def latest(self, *, nodes: Sequence[str], metrics: Sequence[str]
               ) -> dict[tuple[str, str, str | None, str | None], tuple[float, float]]:
        """The newest raw reading of each node, metric, detail and GPU (a counter of one port
        or one GPU): ``(node, metric, detail, GPU UUID) -> (value, seconds since the epoch)``.
        Each series and metric is one seek of the ``readings_series`` index for its newest
        time; where several series hold the same key (a check and a sweep), the newest
        reading wins."""
        ids = dict(self.conn.execute(
            f"SELECT id, name FROM names WHERE name IN ({','.join('?' * len(metrics))})",
            list(metrics))) if metrics else {}
        out: dict[tuple[str, str, str | None, str | None], tuple[float, float]] = {}
        for metric_id, name in ids.items():
            for at in range(0, len(nodes), _IN_CHUNK):
                chunk = list(nodes[at:at + _IN_CHUNK])
                rows = self.conn.execute(
                    "SELECT s.node, r.detail, s.uuid, r.value, r.ts FROM series s "
                    "JOIN readings r INDEXED BY readings_series ON r.series = s.id "
                    "AND r.metric = ? AND r.ts = (SELECT MAX(x.ts) FROM readings x "
                    "INDEXED BY readings_series WHERE x.series = s.id AND x.metric = ?) "
                    f"WHERE s.node IN ({','.join('?' * len(chunk))}) AND r.agg IS NULL "
                    "ORDER BY r.ts, r.run, r.seq", [metric_id, metric_id, *chunk])
                for node, detail, uuid, value, ts in rows:
                    out[(node, name, detail, uuid)] = (value, ts / 1000.0)
        return out

    def has_run(self, run_id: str) -> bool:
        return self.conn.execute("SELECT 1 FROM runs WHERE run_id = ?",
                                 (run_id,)).fetchone() is not None

    def metrics(self) -> list[str]:
        return [r[0] for r in self.conn.execute(
            "SELECT name FROM names WHERE id IN (SELECT DISTINCT metric FROM readings) "
            "ORDER BY 1")]

    def count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM readings").fetchone()[0])

    def runs(self, limit: int = 20) -> list[RunInfo]:
        rows = self.conn.execute(
            "SELECT run_id, started, kind, origin, profile, nodes, status, finished FROM runs "
            "ORDER BY started DESC LIMIT ?", (limit,))
        return [RunInfo(*r) for r in rows]

    def actions(self, node: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT ts, run_id, node, action, reason, outcome FROM actions"
        args: tuple[Any, ...] = ()
        if node:
            sql += " WHERE node = ?"
            args = (node,)
        cols = ("ts", "run_id", "node", "action", "reason", "outcome")
        return [dict(zip(cols, r, strict=True))
                for r in self.conn.execute(sql + " ORDER BY ts, id", args)]

    def baseline(self, *, since: float, until: float | None = None,
                 metrics: Sequence[str] | None = None,
                 nodes: Sequence[str] | None = None) -> list[Measurement]:
        """One record per (node, GPU, metric): the median over the window.

        This is what the analyzer's drift detection compares a new run with
        (``Baseline.from_records``). Rows stream in group order, so memory
        holds one group at a time, not the window.
        """
        import statistics  # not at start-up: a trend needs neither

        from provision.measurement import Measurement

        out: list[Measurement] = []
        for m in metrics or [None]:  # type: ignore[list-item]
            src, cond, args = _where(nodes, m, since, until, None)
            rows = self.conn.execute(
                "SELECT s.node, s.gpu, m.name, r.value, s.unit, s.serial, s.uuid, s.check_name "
                f"FROM{src} JOIN series s ON s.id = r.series JOIN names m ON m.id = r.metric"
                f"{cond} ORDER BY s.node, s.gpu, m.name, r.ts", args)
            for (node, gpu, metric), grp in itertools.groupby(rows, key=lambda r: r[:3]):
                g = list(grp)
                last = g[-1]
                out.append(Measurement(
                    node=node, metric=metric, gpu=gpu,
                    value=float(statistics.median(r[3] for r in g)), unit=last[4],
                    serial=last[5], uuid=last[6], check=last[7],
                    source=f"history:{len(g)} samples", detail="baseline median"))
        return out

    def integrity_check(self) -> str:
        return str(self.conn.execute("PRAGMA integrity_check").fetchone()[0])

    def journal_mode(self) -> str:
        return str(self.conn.execute("PRAGMA journal_mode").fetchone()[0])


def _where(nodes: Sequence[str] | None, metric: str | None, since: float | None,
           until: float | None, uuid: str | None) -> tuple[str, str, list[Any]]:
    """``readings r`` and a WHERE clause: each filter through the index made for it."""
    clauses: list[str] = []
    args: list[Any] = []
    if nodes:
        clauses.append(f"r.series IN (SELECT id FROM series WHERE node IN "
                       f"({','.join('?' * len(nodes))}))")
        args.extend(nodes)
    if uuid:
        clauses.append("r.series IN (SELECT id FROM series WHERE uuid = ?)")
        args.append(uuid)
    if metric:
        clauses.append("r.metric = (SELECT id FROM names WHERE name = ?)")
        args.append(metric)
    if since is not None:
        clauses.append("r.ts >= ?")
        args.append(_ms(since))
    if until is not None:
        clauses.append("r.ts < ?")
        args.append(_ms(until))
    # without statistics SQLite would walk (metric, time) for every node; point it at the index
    source = " readings r INDEXED BY readings_series" if nodes or uuid else " readings r"
    return source, (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def _ms(ts: float) -> int:
    """Seconds since the epoch as the stored integer milliseconds."""
    return round(ts * 1000)


class _Interned:
    """Numbers for names (metrics, run ids) and series, created on first use."""

    def __init__(self, c: sqlite3.Connection) -> None:
        self.c = c
        self.names: dict[str, int] = {}
        self.series_ids: dict[tuple[Any, ...], int] | None = None

    def name(self, name: str) -> int:
        got = self.names.get(name)
        if got is None:
            row = self.c.execute("SELECT id FROM names WHERE name = ?", (name,)).fetchone()
            got = row[0] if row else self.c.execute(
                "INSERT INTO names (name) VALUES (?)", (name,)).lastrowid
            self.names[name] = int(got)  # type: ignore[arg-type]
        return self.names[name]

    def series(self, r: Measurement) -> int:
        if self.series_ids is None:  # a sweep writes every series it has: read them once
            self.series_ids = {tuple(row[1:]): row[0] for row in self.c.execute(
                "SELECT id, node, gpu, serial, uuid, unit, check_name FROM series")}
        key = (r.node, r.gpu, r.serial, r.uuid, r.unit, r.check)
        got = self.series_ids.get(key)
        if got is None:
            got = self.series_ids[key] = int(self.c.execute(  # type: ignore[arg-type]
                "INSERT INTO series (node, gpu, serial, uuid, unit, check_name) "
                "VALUES (?,?,?,?,?,?)", key).lastrowid)
        return got

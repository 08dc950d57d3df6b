"""The history store on a real SQLite file: schema, migrations, concurrency, retention."""

from __future__ import annotations

import multiprocessing as mp
import random
import sqlite3
import time
from pathlib import Path

import pytest

from provision.errors import InputError
from provision.history import schema
from provision.history.retention import RetentionPolicy, compact
from provision.history.store import HistoryBusy, HistoryStore, RunInfo
from provision.history.timeparse import parse_since
from provision.history.trend import series, sparkline
from provision.measurement import Measurement

WRITERS = 32
RUNS_PER_WRITER = 5
ROWS_PER_RUN = 40


def _records(node: str, n: int, ts: str | None = None) -> list[Measurement]:
    return [Measurement(node=node, metric="gpu_temperature", value=30 + i % 40, gpu=i % 8,
                        uuid=f"GPU-{node}-{i % 8}", unit="C", check="nvml", ts=ts)
            for i in range(n)]


def _writer(path: str, idx: int, start: mp.synchronize.Event) -> None:  # type: ignore[name-defined]
    start.wait()
    for r in range(RUNS_PER_WRITER):
        # a fresh connection per run, like separate sweep processes
        with HistoryStore(path) as store:
            store.record(RunInfo(f"w{idx}-r{r}", time.time(), kind="test"),
                         _records(f"gpu{idx:03d}", ROWS_PER_RUN))


def test_32_concurrent_writer_processes_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(str(db), i, start)) for i in range(WRITERS)]
    for p in procs:
        p.start()
    start.set()  # release all writers at once: the fresh database is created under contention
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * WRITERS
    with HistoryStore(db) as store:
        assert store.count() == WRITERS * RUNS_PER_WRITER * ROWS_PER_RUN
        per_node = dict(store.conn.execute("SELECT node, COUNT(*) FROM samples GROUP BY node"))
        assert per_node == {f"gpu{i:03d}": RUNS_PER_WRITER * ROWS_PER_RUN
                            for i in range(WRITERS)}
        runs = store.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        assert runs == WRITERS * RUNS_PER_WRITER
        assert store.integrity_check() == "ok"
        assert store.journal_mode() == "wal"
        assert store.version() == schema.LATEST


def test_migrates_a_version_1_database(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    c = sqlite3.connect(db)
    c.execute(schema.VERSION_TABLE)
    for stmt in schema.MIGRATIONS[0].statements:
        c.execute(stmt)
    c.execute("INSERT INTO schema_version VALUES (1, 'runs and samples', 0)")
    c.execute("INSERT INTO samples (ts, node, metric, value) VALUES (1, 'n1', 'xid_events', 3)")
    c.commit()
    c.close()
    with HistoryStore(db) as store:
        assert store.version() == schema.LATEST
        assert [(s.ts, s.value, s.agg) for s in store.samples(nodes=["n1"])] == [(1.0, 3.0, "raw")]
        store.set_streaks("n1", {"fail:xid": 2}, "r1")
        assert store.streaks("n1") == {"fail:xid": 2}


def test_refuses_newer_schema_and_non_database(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    with HistoryStore(db) as store:
        store.conn.execute("INSERT INTO schema_version VALUES (99, 'future', 0)")
    with pytest.raises(InputError, match="newer than this forge"):
        HistoryStore(db)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(InputError, match="not a forge history database"):
        HistoryStore(junk)


def test_query_filters_and_baseline(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h.db") as store:
        for day, temp in enumerate([40, 42, 44, 90]):
            ts = f"2025-01-0{day + 1}T00:00:00Z"
            store.record(RunInfo(f"r{day}", 0), [
                Measurement(node="gpu001", metric="gpu_temperature", value=temp, gpu=0, ts=ts),
                Measurement(node="gpu002", metric="gpu_temperature", value=50, gpu=0, ts=ts)])
        jan3 = parse_since("2025-01-03")
        got = store.samples(nodes=["gpu001"], metric="gpu_temperature", since=jan3)
        assert [s.value for s in got] == [44.0, 90.0]
        base = store.baseline(since=0, until=parse_since("2025-01-04"),
                              metrics=["gpu_temperature"])
        assert [(b.node, b.value) for b in base] == [("gpu001", 42.0), ("gpu002", 50.0)]


def test_compaction_downsamples_and_deletes(tmp_path: Path) -> None:
    now = 1_000 * 86400.0
    with HistoryStore(tmp_path / "h.db") as store:
        old = [Measurement(node="n1", metric="xid_events", value=v, ts=None) for v in (0, 0, 6)]
        store.record(RunInfo("old", now - 20 * 86400 + 10), old)          # 20 days: fold
        store.record(RunInfo("ancient", now - 400 * 86400), old)          # 400 days: delete
        store.record(RunInfo("new", now - 3600), old)                     # 1 hour: keep raw
        res = compact(store, RetentionPolicy(raw_days=14, keep_days=365), now=now)
        assert res.raw_rows_folded == 6
        assert res.rows_deleted == 1  # the ancient bucket
        rows = store.samples(metric="xid_events")
        buckets = [s for s in rows if s.agg == "hour"]
        assert len(buckets) == 1
        assert (buckets[0].n, buckets[0].value, buckets[0].vmax) == (3, 2.0, 6.0)
        assert sum(1 for s in rows if s.agg == "raw") == 3
        assert store.integrity_check() == "ok"
    with pytest.raises(InputError, match="raw_days"):
        RetentionPolicy(raw_days=30, keep_days=7)


def test_sparkline_keeps_a_spike_visible() -> None:
    assert sparkline([1, 1, 1]) == "▁▁▁"
    assert sparkline([0, 7]) == "▁█"
    line = sparkline([0.0] * 99 + [5.0], width=10)
    assert len(line) == 10 and line[-1] == "█"


def test_series_groups_by_node_gpu_metric(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h.db") as store:
        store.record(RunInfo("a", 10), _records("n1", 16))
        got = series(store.samples())
        assert len(got) == 8 and all(len(s.values) == 2 for s in got)
        assert got[0].key == "n1 gpu0"


def test_another_applications_database_is_never_modified(tmp_path: Path) -> None:
    """Refused before anything is written: no WAL switch, no schema_version table."""
    other = tmp_path / "app.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    for readonly in (False, True):
        with pytest.raises(InputError, match="another application's database"):
            HistoryStore(other, readonly=readonly)
    assert other.read_bytes() == before
    assert not other.with_name("app.db-wal").exists()


def test_reader_opens_read_only_and_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    with HistoryStore(db) as store:
        store.record(RunInfo("r1", 1.0), [Measurement(node="n1", metric="m", value=1.0)])
    db.chmod(0o444)
    before = db.read_bytes()
    with HistoryStore(db, readonly=True) as store:
        assert store.count() == 1
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store.conn.execute("DELETE FROM readings")
    assert db.read_bytes() == before


def test_damaged_pages_are_one_line_and_the_file_is_kept(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    with HistoryStore(db) as store:
        store.record(RunInfo("r1", 1.0), [Measurement(node=f"n{i}", metric="m", value=float(i))
                                          for i in range(3000)])
    data = bytearray(db.read_bytes())
    page = 4096
    for offset in range(2 * page, len(data) - page, page):   # keep the header and schema page
        data[offset + 100: offset + 400] = random.Random(offset).randbytes(300)
    db.write_bytes(bytes(data))
    damaged = db.read_bytes()
    with pytest.raises(InputError, match="damaged") as err, \
            HistoryStore(db, readonly=True) as store:
        store.samples(metric="m")
    assert str(db) in str(err.value)
    assert db.read_bytes() == damaged


def test_lock_held_by_another_process_honours_the_deadline(tmp_path: Path) -> None:
    """A writer holding the lock past the deadline: 124 after the deadline, not before,
    and a reader is not blocked at all (WAL)."""
    db = tmp_path / "h.db"
    HistoryStore(db).close()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with HistoryStore(db, readonly=True) as reader:
            assert reader.count() == 0
        started = time.monotonic()
        with pytest.raises(HistoryBusy), \
                HistoryStore(db, busy_timeout_s=0.2, retry_deadline_s=1.5) as store:
            store.record(RunInfo("r2", 2.0), [Measurement(node="n", metric="m", value=1)])
        assert 1.5 <= time.monotonic() - started < 10
    finally:
        holder.execute("ROLLBACK")
        holder.close()
def _v2_database(db: Path) -> list[tuple]:
    """A version-2 store written by the earlier schema, with what the migration must keep."""
    c = sqlite3.connect(db)
    c.execute(schema.VERSION_TABLE)
    for m in schema.MIGRATIONS[:2]:
        for stmt in m.statements:
            c.execute(stmt)
        c.execute("INSERT INTO schema_version VALUES (?, ?, 0)", (m.version, m.description))
    rows = [  # ts, node, gpu, serial, uuid, metric, value, unit, check, detail, run, agg, n, min, max
        (100.5, "n1", 0, "S1", "GPU-a", "gpu_temperature", 41.0, "C", "sweep", None, "r1", "raw",
         1, None, None),
        (100.5, "n1", 0, "S1", "GPU-a", "gpu_temperature", 42.0, "C", "sweep", None, "r1", "raw",
         1, None, None),  # same key twice: both kept
        (100.5, "n1", None, None, None, "xid_events", 0.0, "count", None, "none", "r1", "raw",
         1, None, None),
        (3600.0, "n2", 1, None, None, "gpu_temperature", 40.0, "C", None, None, None, "hour",
         4, 38.0, 44.0),
    ]
    c.executemany("INSERT INTO samples (ts, node, gpu, serial, uuid, metric, value, unit, "
                  "check_name, detail, run_id, agg, n, vmin, vmax) "
                  "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    c.commit()
    c.close()
    return rows


def test_migration_keeps_every_reading_of_a_version_2_store(tmp_path: Path) -> None:
    db = tmp_path / "v2.db"
    rows = _v2_database(db)
    with HistoryStore(db, readonly=True) as store:
        got = [(s.ts, s.node, s.gpu, s.serial, s.uuid, s.metric, s.value, s.unit, s.check,
                s.detail, s.run_id, s.agg, s.n, s.vmin, s.vmax) for s in store.samples()]
        assert sorted(got, key=repr) == sorted(rows, key=repr)
        # the old table's name still answers ad-hoc SQL, as a view
        assert store.conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == 4
        assert store.integrity_check() == "ok"


def test_recording_a_run_again_keeps_both_readings(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h.db") as store:
        rec = [Measurement(node="n1", metric="xid_events", value=v, gpu=0) for v in (1, 2)]
        store.record(RunInfo("r1", 50.0), rec)
        store.record(RunInfo("r1", 50.0), rec)
        assert sorted(s.value for s in store.samples()) == [1.0, 1.0, 2.0, 2.0]


def test_queries_use_their_index_and_a_reading_is_small(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h.db") as store:
        for sweep in range(12):
            store.record(RunInfo(f"s{sweep}", 1e9 + 900 * sweep), [
                Measurement(node=f"gpu{n:03d}", metric=m, value=40.0 + sweep, gpu=g,
                            uuid=f"GPU-{n:03d}-{g}", serial=f"16523{n:05d}{g}", unit="C",
                            check="sweep")
                for n in range(32) for g in range(8)
                for m in ("gpu_temperature", "gpu_power", "xid_events")])
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        c = store.conn

        def plan(**kw: object) -> str:
            from provision.history.store import _where
            src, cond, args = _where(kw.get("nodes"), kw.get("metric"),  # type: ignore[arg-type]
                                     1e9, None, kw.get("uuid"))  # type: ignore[arg-type]
            return " ".join(r[3] for r in c.execute(
                f"EXPLAIN QUERY PLAN SELECT r.value FROM{src}{cond}", args))

        assert "SEARCH r USING PRIMARY KEY (metric=? AND ts>?)" in plan(metric="gpu_power")
        assert "readings_series (series=? AND metric=? AND ts>?)" in plan(
            metric="gpu_power", nodes=["gpu001"])
        assert "readings_series" in plan(metric="gpu_power", uuid="GPU-001-3")
        n = store.count()
        size = (tmp_path / "h.db").stat().st_size
        assert n == 12 * 32 * 8 * 3
        assert size / n < 292 / 3, f"{size / n:.0f} bytes a reading"


@pytest.mark.parametrize("sweeps", [3, 45])  # below and above the numpy threshold
def test_narrow_fetch_gives_the_trends_of_full_samples(tmp_path: Path, sweeps: int) -> None:
    from provision.history.trend import trends, trends_of

    with HistoryStore(tmp_path / "h.db") as store:
        for s in range(sweeps):
            store.record(RunInfo(f"s{s}", 1e9 + 900 * s), [
                Measurement(node=f"gpu{n:03d}", metric="gpu_temperature", gpu=g,
                            value=40.0 + (s * 7 + n * g) % 13 + (n == 5 and s == 30) * 40,
                            unit="C" if s < 2 else "degC")
                for n in range(64) for g in range(8)])
        got = trends_of(*store.values(metric="gpu_temperature", since=1e9 + 900),
                        "gpu_temperature", 40)
        want = trends(series(store.samples(metric="gpu_temperature", since=1e9 + 900)), 40)
        assert got == want
        assert len(got) == 512 and got[0].unit == "degC"
        assert len({t.spark for t in got}) >= 2  # the trends differ: a real comparison

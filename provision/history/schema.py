"""The history schema: an ordered list of migrations and the version table that records them.

A database is at version N when migrations 1..N have run; each migration runs
in its own transaction together with the row in ``schema_version`` that marks
it done, so a crash leaves the database at N or N+1, never between. A database
newer than this forge refuses to open rather than guess.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "runs and samples", (
        """CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            started REAL NOT NULL,
            finished REAL,
            kind TEXT NOT NULL,
            origin TEXT,
            profile TEXT,
            nodes TEXT,
            status TEXT)""",
        # one row per measurement; agg says whether it is a raw reading or a
        # downsampled bucket (n readings, mean in value, vmin/vmax kept)
        """CREATE TABLE samples (
            id INTEGER PRIMARY KEY,
            run_id TEXT,
            ts REAL NOT NULL,
            node TEXT NOT NULL,
            gpu INTEGER,
            serial TEXT,
            uuid TEXT,
            metric TEXT NOT NULL,
            value REAL NOT NULL,
            unit TEXT,
            check_name TEXT,
            detail TEXT,
            agg TEXT NOT NULL DEFAULT 'raw',
            n INTEGER NOT NULL DEFAULT 1,
            vmin REAL,
            vmax REAL)""",
        "CREATE INDEX samples_node_metric_ts ON samples(node, metric, ts)",
        "CREATE INDEX samples_ts ON samples(ts)",
    )),
    Migration(2, "GPU identity index and action state", (
        "CREATE INDEX samples_uuid_metric_ts ON samples(uuid, metric, ts)",
        # consecutive failing/clean sweeps per node and key ("fail:<check>", "clean"),
        # what the drain/resume policy needs to remember between runs
        """CREATE TABLE streaks (
            node TEXT NOT NULL,
            key TEXT NOT NULL,
            count INTEGER NOT NULL,
            last_run TEXT,
            updated REAL NOT NULL,
            PRIMARY KEY (node, key))""",
        # every action taken (or planned in a dry run), for the audit trail
        """CREATE TABLE actions (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            run_id TEXT,
            node TEXT NOT NULL,
            action TEXT NOT NULL,
            reason TEXT,
            outcome TEXT)""",
    )),
)

#: columns of the old ``samples`` table, now a view over the compact tables
_SAMPLE_VIEW = """CREATE VIEW samples AS
    SELECT r.ts / 1000.0 AS ts, s.node, s.gpu, s.serial, s.uuid, m.name AS metric, r.value,
           s.unit, s.check_name, r.detail, rn.name AS run_id, COALESCE(r.agg, 'raw') AS agg,
           COALESCE(r.n, 1) AS n, r.vmin, r.vmax
    FROM readings r JOIN series s ON s.id = r.series JOIN names m ON m.id = r.metric
    LEFT JOIN names rn ON rn.id = r.run"""

MIGRATIONS += (
    # about 45 bytes a reading instead of 292: metric, run and GPU identity are stored once
    # and referred to by number, time is integer milliseconds, and the readings are clustered
    # by (metric, time) so a fleet-wide query reads one contiguous range
    Migration(3, "compact readings: interned names and series, (metric, time) clustering", (
        "CREATE TABLE names (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
        # one row per reporting entity: a node or GPU with its identity, unit and check
        """CREATE TABLE series (
            id INTEGER PRIMARY KEY,
            node TEXT NOT NULL,
            gpu INTEGER,
            serial TEXT,
            uuid TEXT,
            unit TEXT,
            check_name TEXT)""",
        "CREATE INDEX series_node ON series(node)",
        "CREATE INDEX series_uuid ON series(uuid)",
        # ts: milliseconds since the epoch; run: names.id (0: none); seq tells apart readings
        # that share the rest of the key; agg NULL = raw reading, n NULL = 1
        """CREATE TABLE readings (
            metric INTEGER NOT NULL,
            ts INTEGER NOT NULL,
            series INTEGER NOT NULL,
            run INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            value REAL NOT NULL,
            detail TEXT,
            agg TEXT,
            n INTEGER,
            vmin REAL,
            vmax REAL,
            PRIMARY KEY (metric, ts, series, run, seq)) WITHOUT ROWID""",
        "CREATE INDEX readings_series ON readings(series, metric, ts)",
        # existing readings move over, in one transaction with the version row
        "INSERT OR IGNORE INTO names (name) SELECT DISTINCT metric FROM samples",
        "INSERT OR IGNORE INTO names (name) SELECT DISTINCT run_id FROM samples "
        "WHERE run_id IS NOT NULL",
        "INSERT INTO series (node, gpu, serial, uuid, unit, check_name) "
        "SELECT DISTINCT node, gpu, serial, uuid, unit, check_name FROM samples",
        """INSERT INTO readings
            SELECT m.id, CAST(ROUND(x.ts * 1000) AS INTEGER) AS t, s.id AS sid,
                   COALESCE(rn.id, 0) AS rid,
                   ROW_NUMBER() OVER (PARTITION BY m.id, CAST(ROUND(x.ts * 1000) AS INTEGER),
                                      s.id, COALESCE(rn.id, 0) ORDER BY x.id) - 1,
                   x.value, x.detail, NULLIF(x.agg, 'raw'), NULLIF(x.n, 1), x.vmin, x.vmax
            FROM samples x
            JOIN names m ON m.name = x.metric
            JOIN series s ON s.node = x.node AND s.gpu IS x.gpu AND s.serial IS x.serial
                 AND s.uuid IS x.uuid AND s.unit IS x.unit AND s.check_name IS x.check_name
            LEFT JOIN names rn ON rn.name = x.run_id""",
        "DROP TABLE samples",
        _SAMPLE_VIEW,
    )),
)

LATEST = MIGRATIONS[-1].version

#: tables forge creates; a database holding other tables and no schema_version is not forge's
TABLES = frozenset({"schema_version", "runs", "samples", "streaks", "actions", "names",
                    "series", "readings"})

VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied REAL NOT NULL)"""

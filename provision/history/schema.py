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

LATEST = MIGRATIONS[-1].version

VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied REAL NOT NULL)"""

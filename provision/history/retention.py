"""Retention and compaction: keep recent readings raw, older ones as buckets, drop the oldest.

Downsampled rows keep the mean in ``value`` and the count, minimum and
maximum, so a counter that jumped once is still visible as ``vmax`` after
compaction.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Literal

from provision.errors import InputError
from provision.history.store import HistoryStore

BUCKETS = {"hour": 3600, "day": 86400}


@dataclass(frozen=True)
class RetentionPolicy:
    raw_days: float = 14.0           # raw readings younger than this are kept as they are
    keep_days: float = 365.0         # anything older than this is deleted
    bucket: Literal["hour", "day"] = "hour"
    vacuum: Literal["incremental", "full", "none"] = "incremental"

    def __post_init__(self) -> None:
        if self.raw_days < 0 or self.keep_days <= 0:
            raise InputError("retention: raw_days must be >= 0 and keep_days > 0")
        if self.raw_days > self.keep_days:
            raise InputError(f"retention: raw_days ({self.raw_days:g}) exceeds keep_days "
                             f"({self.keep_days:g})")
        if self.bucket not in BUCKETS:
            raise InputError(f"retention: bucket {self.bucket!r} is not one of hour, day")


@dataclass(frozen=True)
class CompactResult:
    raw_rows_folded: int
    buckets_written: int
    rows_deleted: int
    runs_deleted: int


def compact(store: HistoryStore, policy: RetentionPolicy, *,
            now: float | None = None) -> CompactResult:
    now = time.time() if now is None else now
    raw_cut = now - policy.raw_days * 86400
    keep_cut = now - policy.keep_days * 86400
    width = BUCKETS[policy.bucket]

    def work(c: sqlite3.Connection) -> CompactResult:
        raw_ms, keep_ms, width_ms = int(raw_cut * 1000), int(keep_cut * 1000), width * 1000
        folded = c.execute("SELECT COUNT(*) FROM readings WHERE agg IS NULL AND ts < ?",
                           (raw_ms,)).fetchone()[0]
        # a bucket that already holds readings (from the last compaction) absorbs the new ones
        cur = c.execute(
            "INSERT INTO readings (metric, ts, series, run, seq, value, detail, agg, n, vmin, "
            "vmax) SELECT metric, (ts / ?) * ?, series, 0, 0, AVG(value), NULL, ?, COUNT(*), "
            "MIN(value), MAX(value) FROM readings WHERE agg IS NULL AND ts < ? "
            "GROUP BY metric, series, ts / ? "
            "ON CONFLICT DO UPDATE SET value = (value * n + excluded.value * excluded.n) "
            "/ (n + excluded.n), n = n + excluded.n, vmin = MIN(vmin, excluded.vmin), "
            "vmax = MAX(vmax, excluded.vmax)",
            (width_ms, width_ms, policy.bucket, raw_ms, width_ms))
        buckets = cur.rowcount
        c.execute("DELETE FROM readings WHERE agg IS NULL AND ts < ?", (raw_ms,))
        deleted = c.execute("DELETE FROM readings WHERE ts < ?", (keep_ms,)).rowcount
        runs = c.execute("DELETE FROM runs WHERE started < ?", (keep_cut,)).rowcount
        c.execute("DELETE FROM actions WHERE ts < ?", (keep_cut,))
        return CompactResult(int(folded), int(buckets), int(deleted), int(runs))

    result = store.transaction(work)
    if policy.vacuum == "incremental":
        store.conn.execute("PRAGMA incremental_vacuum")
    elif policy.vacuum == "full":
        store.conn.execute("VACUUM")
    return result

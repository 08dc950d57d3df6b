"""A sweep's records through the analyzer, with drift against the history store's baseline.

The drain policy judges hard limits only (each record's own min/max from the
spec); the analyzer adds what a fleet view finds: outliers against the
cohort and drift against each part's own recent past. Those are reported,
never drained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from provision.history.store import HistoryStore
from provision.sweep.result import SweepResult

if TYPE_CHECKING:
    from provision.analyze.findings import Analysis

DEFAULT_BASELINE_DAYS = 7.0


def analyze_sweep(result: SweepResult, db: Path | None,
                  baseline_days: float = DEFAULT_BASELINE_DAYS) -> Analysis | None:
    from provision.analyze.drift import Baseline
    from provision.analyze.engine import analyze

    records = result.records
    if not records:
        return None
    base = None
    if db is not None and db.exists() and baseline_days > 0:
        with HistoryStore(db, readonly=True) as store:
            # until=started: this run's own rows (already stored) are not their own baseline
            recs = store.baseline(since=result.started - baseline_days * 86400,
                                  until=result.started,
                                  nodes=[n.node for n in result.nodes])
        if recs:
            base = Baseline.from_records(recs, source=f"history {db} "
                                                      f"(median of {baseline_days:g} days)")
    return analyze(records, baseline=base, inputs=(f"sweep {result.run_id}",))

"""The analysis result: what the reports render and other stages consume.

The finding type itself lives in :mod:`provision.finding` (re-exported here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from provision.analyze.columns import Columns
from provision.analyze.policy import Policy
from provision.analyze.stats import CohortStats, Judgement
from provision.errors import ExitCode
from provision.finding import IDENTITY, KINDS, SEVERITY_RANK, Finding, Kind, Severity, sort_key
from provision.measurement import BadLine

if TYPE_CHECKING:
    from provision.analyze.pairs import Attribution

__all__ = ["IDENTITY", "KINDS", "SEVERITY_RANK", "Analysis", "CohortSummary", "Finding", "Kind",
           "Severity", "sort_key"]


@dataclass(frozen=True)
class CohortSummary:
    """One cohort of like readings as the analyzer judged it (what reports show per cohort)."""

    index: int
    label: str
    metric: str
    model: str | None
    profile: str | None
    check: str | None
    level: str                  # "gpu" or "node"
    pair: str | None
    unit: str | None
    better: str
    direction: int              # +1 higher is better, -1 lower, 0 two-sided
    n: int
    median: float | None
    mad: float | None
    scale: float | None
    #: where a reading starts to be flagged as an outlier (None: no statistical judgement)
    flag_at: float | None
    zero_spread: bool
    tiny: bool
    expected_constant: float | None
    #: every reading is a whole number (lanes, counts): show limits as whole values
    whole: bool


@dataclass(frozen=True, eq=False)
class Analysis:
    findings: tuple[Finding, ...]
    policy: Policy
    columns: Columns
    stats: CohortStats
    judgement: Judgement
    #: per cohort, what it was judged by (same order as ``columns.cohorts``)
    cohorts: tuple[CohortSummary, ...] = ()
    #: the slow pairs and the endpoints blamed for them (the pair findings come from it)
    attribution: Attribution | None = None
    bad_lines: tuple[BadLine, ...] = ()
    inputs: tuple[str, ...] = ()
    baseline_size: int = 0
    #: per node, the seconds each stage took (kept for the benchmark; not part of any report)
    timings: dict[str, float] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        out = {"fail": 0, "warn": 0}
        for f in self.findings:
            out[f.severity] += 1
        return out

    def is_failing(self, f: Finding) -> bool:
        return f.severity == "fail" or self.policy.fail_on == "warn"

    @property
    def failing(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if self.is_failing(f))

    @property
    def failing_nodes(self) -> list[str]:
        return sorted({n for f in self.failing for n in f.nodes})

    @property
    def failed(self) -> bool:
        return bool(self.failing)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.CHECKS_FAILED if self.failed else ExitCode.OK

    @property
    def verdict(self) -> str:
        return "fail" if self.failed else "pass"

    @property
    def nodes(self) -> tuple[str, ...]:
        return self.columns.nodes

    @property
    def n_records(self) -> int:
        return self.columns.n

    @property
    def n_gpus(self) -> int:
        import numpy as np

        g = self.columns.gpu >= 0
        if not g.any():
            return 0
        # sorted, then counted: numpy's hashed unique() takes seconds on such keys
        key = np.sort(self.columns.node[g].astype(np.int64) * 4096 + self.columns.gpu[g])
        return int(np.count_nonzero(key[1:] != key[:-1])) + 1

    def node_pair_cells(self) -> dict[int, dict[tuple[str, str], tuple[float, int]]]:
        """Per node-to-node pair cohort, every pair (a < b): its median reading and its worst
        severity (0 ok, 1 warn, 2 fail). The attribution keeps only slow pairs; a heat map
        shows them all."""
        import numpy as np

        cols = self.columns
        acc: dict[int, dict[tuple[str, str], list[int]]] = {}
        for i in np.nonzero(cols.peer >= 0)[0].tolist():
            c = int(cols.cohort[i])
            if cols.cohorts[c].pair != "node":
                continue
            a_ep, b_ep = cols.nodes[cols.node[i]], cols.peers[cols.peer[i]]
            key = (a_ep, b_ep) if a_ep < b_ep else (b_ep, a_ep)
            acc.setdefault(c, {}).setdefault(key, []).append(i)
        return {c: {key: (float(np.median(cols.value[rs])),
                          int(self.judgement.severity[rs].max()))
                    for key, rs in pairs.items()}
                for c, pairs in acc.items()}

    def node_status(self) -> dict[str, str]:
        """Per node: 'pass', 'warn' or 'fail' (its worst finding)."""
        status = dict.fromkeys(self.nodes, "pass")
        for f in self.findings:
            for n in f.nodes:
                if n in status and status[n] != "fail":
                    status[n] = f.severity
        return status

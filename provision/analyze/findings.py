"""Findings and the analysis result: what the reports render and other stages consume."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from provision.analyze.columns import Columns
from provision.analyze.policy import Policy, Severity
from provision.analyze.stats import CohortStats, Judgement
from provision.errors import ExitCode
from provision.measurement import BadLine

#: the identity fields a finding copies from its reading, in the order reports show them
IDENTITY = ("serial", "uuid", "bus_id", "vbios", "node_serial")

Kind = Literal["limit", "outlier", "pair-node", "pair-link", "node-group", "drift"]
KINDS: tuple[Kind, ...] = ("limit", "outlier", "pair-node", "pair-link", "node-group", "drift")


@dataclass(frozen=True)
class Finding:
    """One flagged entity (a GPU, a node, a link) on one metric, with the why."""

    node: str
    gpu: int | None
    metric: str
    value: float
    reason: str
    severity: Severity
    kind: Kind
    #: what the value should be: the cohort median, the expected constant, or the physical figure
    expected: float | None = None
    #: the threshold that was crossed (a hard limit, or where flagging starts)
    limit: float | None = None
    #: where ``expected``/``limit`` come from (a datasheet figure, "median of 4096 GPUs")
    source: str | None = None
    unit: str | None = None
    model: str | None = None
    check: str | None = None
    #: the other end, for a link finding ("gpu017" or "gpu003:1")
    peer: str | None = None
    #: the partners of a blamed endpoint's slow pairs
    peers: tuple[str, ...] = ()
    #: the GPUs of a node-level finding
    gpus: tuple[int, ...] = ()
    #: robust score (bad-direction deviation / cohort spread), None for limits
    score: float | None = None
    #: value / expected - 1, None when expected is 0 or unknown
    deviation: float | None = None
    cohort: str = ""
    cohort_size: int = 0
    baseline: float | None = None
    fatal: bool = False
    #: how many readings this finding stands for (repeated samples, both directions of a pair)
    count: int = 1
    #: the tool's own words for the reading (an Xid message, the error that stopped a test)
    detail: str | None = None
    #: the part's identity, as a vendor's RMA form asks for it (None where no record said)
    serial: str | None = None
    uuid: str | None = None
    bus_id: str | None = None
    vbios: str | None = None
    node_serial: str | None = None

    def identity(self) -> dict[str, str]:
        """The identity fields this finding carries, by name (for reports and labels)."""
        return {k: v for k in IDENTITY if (v := getattr(self, k))}

    @property
    def entity(self) -> str:
        """``gpu003``, ``gpu003 GPU 5``, ``gpu003 GPU 0 <-> gpu003:1``, ``gpu003 <-> gpu017``."""
        base = self.node if self.gpu is None else f"{self.node} GPU {self.gpu}"
        return f"{base} <-> {self.peer}" if self.peer else base

    @property
    def nodes(self) -> tuple[str, ...]:
        """The nodes this finding concerns: both ends of a link between two nodes."""
        if self.kind == "pair-link" and self.peer:
            other = self.peer.split(":")[0]
            if other != self.node:
                return (self.node, other)
        return (self.node,)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["peers"] = list(self.peers)
        d["gpus"] = list(self.gpus)
        for key in ("value", "expected", "limit", "score", "deviation", "baseline"):
            x = d[key]
            if isinstance(x, float) and not math.isfinite(x):
                d[key] = None
        return d


SEVERITY_RANK = {"fail": 2, "warn": 1}


def sort_key(f: Finding) -> tuple[Any, ...]:
    """Worst first: failures, fatal metrics, hard limits and constants, then by score."""
    score = math.inf if f.score is None else f.score
    return (-SEVERITY_RANK[f.severity], not f.fatal, -score, f.metric, f.node, f.gpu or -1)


@dataclass(frozen=True, eq=False)
class Analysis:
    findings: tuple[Finding, ...]
    policy: Policy
    columns: Columns
    stats: CohortStats
    judgement: Judgement
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

    def node_status(self) -> dict[str, str]:
        """Per node: 'pass', 'warn' or 'fail' (its worst finding)."""
        status = dict.fromkeys(self.nodes, "pass")
        for f in self.findings:
            for n in f.nodes:
                if n in status and status[n] != "fail":
                    status[n] = f.severity
        return status

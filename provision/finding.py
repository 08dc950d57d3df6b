"""A finding: one flagged entity (a GPU, a node, a link) on one metric, with the why.

The one finding type of forge. The analyzer (provision.analyze), the sweep
(provision.sweep) and the acceptance checks' verdicts (provision.judge) all
produce it; the reports (provision.report) and the drain policy read it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

Severity = Literal["fail", "warn"]
#: which side of a limit a reading crossed: below a floor (``min``), above a ceiling (``max``)
Bound = Literal["min", "max"]

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
    #: which side of the limit was crossed: ``min`` (a floor) or ``max`` (a ceiling)
    bound: Bound | None = None
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

    @property
    def limit_text(self) -> str:
        """``>= 5`` or ``<= 0``: the limit the reading crossed, as an operator and a number."""
        if self.limit is None:
            return ""
        if self.bound is None or (self.expected is not None and self.limit == self.expected):
            return f"= {self.limit:g}"
        return f"{'>=' if self.bound == 'min' else '<='} {self.limit:g}"

    def line(self) -> str:
        """One line for a health check: ``n1 gpu0: FATAL xid/xid_fatal_events=1 (<= 0) Xid 79``."""
        where = self.node if self.gpu is None else f"{self.node} gpu{self.gpu}"
        kind = "FATAL " if self.fatal else ""
        return (f"{where}: {kind}{self.check or '?'}/{self.metric}={self.value:g} "
                f"({self.limit_text}) {self.detail or ''}").strip()

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

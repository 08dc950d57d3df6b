"""The machine-readable analysis: one schema-versioned JSON object (analysis.schema.json)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from provision.analyze.findings import Analysis
from provision.nodes import fold

SCHEMA_NAME = "forge-analysis"
SCHEMA_VERSION = 1


def schema() -> dict[str, Any]:
    text = resources.files("provision.report").joinpath("analysis.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _f(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def cohorts(a: Analysis) -> list[dict[str, Any]]:
    """Per cohort, what the analyzer judged it by (its own figures, never recomputed)."""
    keep = ("label", "metric", "model", "profile", "check", "level", "pair", "unit", "better",
            "n", "median", "mad", "scale", "flag_at", "zero_spread", "tiny", "expected_constant")
    return [{k: getattr(c, k) for k in keep} for c in a.cohorts]


def to_dict(a: Analysis, *, generated_at: datetime | None = None) -> dict[str, Any]:
    when = (generated_at or datetime.now(UTC)).isoformat(timespec="seconds")
    status = a.node_status()
    by_status: dict[str, list[str]] = {"pass": [], "warn": [], "fail": []}
    for node, s in status.items():
        by_status[s].append(node)
    counts = a.counts()
    pol = a.policy
    return {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "generated_at": when,
        "verdict": a.verdict,
        "exit_code": int(a.exit_code),
        "inputs": list(a.inputs),
        "summary": {
            "records": a.n_records, "nodes": len(a.nodes), "gpus": a.n_gpus,
            "cohorts": len(a.cohorts), "fail": counts["fail"], "warn": counts["warn"],
            "bad_lines": len(a.bad_lines), "baseline_values": a.baseline_size,
        },
        "nodes": {k: fold(v) if v else "" for k, v in by_status.items()},
        "policy": {
            "outlier_z": pol.outlier_z, "fail_z": pol.fail_z, "rel_floor": pol.rel_floor,
            "min_cohort": pol.min_cohort, "tiny_rel": pol.tiny_rel, "node_frac": pol.node_frac,
            "node_gpu_z": pol.node_gpu_z, "node_z": pol.node_z,
            "pair_node_frac": pol.pair_node_frac, "drift_rel": pol.drift_rel,
            "drift_z": pol.drift_z, "fail_on": pol.fail_on,
        },
        "flagged": [{"entity": f.entity, **f.to_dict()} for f in a.findings],
        "cohorts_judged": cohorts(a),
        "bad_lines": [{"path": b.path, "line": b.line, "reason": b.reason} for b in a.bad_lines],
    }


def to_json(a: Analysis, *, generated_at: datetime | None = None) -> str:
    return json.dumps(to_dict(a, generated_at=generated_at), indent=2, sort_keys=True) + "\n"

"""Naive floor for `forge analyze`: orjson per line, numpy median/MAD per (metric, model).

Usage: FILE. No validation, hard limits, zero-spread rules, pairs or node grouping:
robust z-scores (scale = max(1.4826 MAD, 0.5 % of |median|)) in the bad direction,
flagged at 6, printed as JSON. A floor for the same input, not equivalent work.
"""

import sys

import numpy as np
import orjson

groups: dict[tuple[str, str], list[int]] = {}
node: list[str] = []
gpu: list[int | None] = []
metric: list[str] = []
value: list[float] = []
better: list[str | None] = []
with open(sys.argv[1], "rb") as f:
    for line in f:
        if not line.strip():
            continue
        r = orjson.loads(line)
        groups.setdefault((r["metric"], r.get("model")), []).append(len(value))
        node.append(r["node"])
        gpu.append(r.get("gpu"))
        metric.append(r["metric"])
        value.append(r["value"])
        better.append(r.get("better"))
v = np.array(value, dtype=np.float64)
flagged = []
for idx_list in groups.values():
    idx = np.array(idx_list)
    x = v[idx]
    med = np.median(x)
    mad = np.median(np.abs(x - med))
    scale = max(1.4826 * mad, 0.005 * abs(med), 1e-12)
    b = better[idx_list[0]]
    z = (x - med) / scale
    score = -z if b == "higher" else z if b == "lower" else np.abs(z)
    for j in np.flatnonzero(score >= 6).tolist():
        k = int(idx[j])
        flagged.append({"node": node[k], "gpu": gpu[k], "metric": metric[k], "value": value[k],
                        "score": float(score[j])})
flagged.sort(key=lambda d: -d["score"])
sys.stdout.write(orjson.dumps(flagged).decode() + "\n")

"""Node grouping: most GPUs of one node off in the same direction is one node-level cause.

Nodes differ a little even when healthy (inlet air, BIOS settings): a node's
GPUs share those effects, so a node is judged against the *other nodes*, not
against single GPUs. Per GPU-level cohort:

* each node's mean robust score over its GPUs (``signed`` = (value - median) / scale);
* the median and MAD of those node means across the nodes of the cohort; the
  node spread is ``max(1.4826 * MAD, floor / scale)`` (the same relative floor
  as for single readings), or the floor alone with fewer than ``min_cohort`` nodes;
* a node is one finding when its mean is at least ``node_z`` node spreads off
  in the bad direction *and* at least ``node_frac`` of its GPUs are each
  ``node_gpu_z`` spreads off the same way (so one very bad GPU is never
  mistaken for a bad node).

This finds a node whose eight GPUs are each only slightly slow, below the
per-GPU threshold, and folds eight per-GPU findings into one. Everything runs
on each cohort's contiguous slice with ``bincount``; only candidate nodes are
looked at one by one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from provision.analyze.columns import Columns
from provision.analyze.policy import Policy
from provision.analyze.stats import CohortStats, Judgement

_MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True, eq=False)
class NodeGroup:
    node: int
    cohort: int
    #: -1: the node reads low; +1: the node reads high
    sign: int
    members: np.ndarray      # reading indices of the node's GPUs that are off
    readings: np.ndarray     # all the node's readings in the cohort
    score: float             # how many node spreads the node's mean is off, bad direction


def find_node_groups(cols: Columns, st: CohortStats, jd: Judgement,
                     policy: Policy) -> list[NodeGroup]:
    nn = len(cols.nodes)
    t = policy.node_gpu_z
    groups: list[NodeGroup] = []
    for c, coh in enumerate(cols.cohorts):
        if (not coh.gpu_level or coh.pair or st.zero_spread[c] or st.tiny[c]
                or not np.isfinite(st.scale[c]) or st.ends[c] == st.starts[c]):
            continue
        idx = st.members(c)
        sig = jd.signed[idx]
        nd = cols.node[idx]
        total = np.bincount(nd, minlength=nn)
        mean = np.bincount(nd, weights=sig, minlength=nn) / np.maximum(total, 1)
        ok = total >= policy.node_min_gpus
        if not ok.any():
            continue
        means = mean[ok]
        floor = float(st.floor[c] / st.scale[c])
        if means.shape[0] >= policy.min_cohort:
            centre = float(np.median(means))
            spread = max(_MAD_TO_SIGMA * float(np.median(np.abs(means - centre))), floor)
        else:
            centre, spread = 0.0, floor
        z = (mean - centre) / spread
        d = int(st.direction[c])
        for sign in (-1, 1):
            if d == sign:  # only the bad direction: low for higher-is-better, and so on
                continue
            off = sig <= -t if sign < 0 else sig >= t
            n_off = np.bincount(nd[off], minlength=nn)
            zs = -z if sign < 0 else z
            cand = np.nonzero(ok & (zs >= policy.node_z) & (n_off >= policy.node_frac * total))[0]
            for k in cand.tolist():
                mine = nd == k
                groups.append(NodeGroup(node=k, cohort=c, sign=sign, members=idx[mine & off],
                                        readings=idx[mine], score=float(zs[k])))
    return groups

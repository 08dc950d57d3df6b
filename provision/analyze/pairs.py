"""Pair and link attribution: is a slow pair one bad endpoint, or one bad link?

Readings with a ``peer`` (node-to-node ib_write_bw, NCCL pair tests,
GPU-to-GPU copies over an NVLink bridge) are first judged like any other
reading. Then, per cohort:

* a *pair* is the unordered pair of endpoints (``node`` or ``node:gpu``); it
  is slow when at least half of its readings are flagged (both directions of
  one pair count once); its value and score are the means of its readings;
* an *endpoint* is blamed when it has at least ``pair_node_min`` pairs and
  either at least ``pair_node_frac`` of them are slow, or that share is off by
  ``node_gpu_z`` spreads with a median of ``node_z`` (the node-grouping rule:
  every pair a little slow): the node (or GPU) is bad, and its slow pairs are
  explained by it (one ``pair-node`` finding);
* a slow pair with neither endpoint blamed is a ``pair-link`` finding: only
  that link (cable, port, bridge) is slow. With one pair per endpoint (an
  NVLink bridge between two GPUs) the two cannot be told apart, and the link
  is reported, saying so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from provision.analyze.columns import Columns
from provision.analyze.policy import Policy
from provision.analyze.stats import NONE, Judgement


@dataclass
class Pair:
    cohort: int
    a: str
    b: str
    readings: list[int] = field(default_factory=list)
    slow: bool = False
    severity: int = 0
    value: float = float("nan")
    score: float = float("nan")
    flagged: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Blame:
    cohort: int
    endpoint: str
    pairs: tuple[Pair, ...]      # all its pairs in the cohort
    slow: tuple[Pair, ...]       # the flagged ones, which it explains
    median_score: float          # median bad-direction score over all its pairs


@dataclass(frozen=True)
class Attribution:
    blamed: tuple[Blame, ...]
    links: tuple[tuple[Pair, int, int], ...]   # (slow pair, pairs of a, pairs of b)


def endpoint(cols: Columns, i: int) -> str:
    node = cols.nodes[cols.node[i]]
    coh = cols.cohorts[cols.cohort[i]]
    g = int(cols.gpu[i])
    return f"{node}:{g}" if coh.pair == "gpu" and g >= 0 else node


def attribute(cols: Columns, jd: Judgement, policy: Policy) -> Attribution:
    """Vectorised over all pair readings; Python objects only for the pairs reported."""
    idx = np.nonzero(cols.peer >= 0)[0]
    if idx.shape[0] == 0:
        return Attribution((), ())
    gpu_pair = np.array([c.pair == "gpu" for c in cols.cohorts], dtype=bool)
    coh = cols.cohort[idx].astype(np.int64)
    node = cols.node[idx].astype(np.int64)
    gpu = cols.gpu[idx].astype(np.int64)
    # endpoint names: this side is "node" or "node:gpu"; the other side is the peer string
    ep_ix: dict[str, int] = {}
    g_used = np.where(gpu_pair[coh] & (gpu >= 0), gpu + 1, 0)
    self_key = node * (int(gpu.max()) + 2) + g_used
    uniq_self, inv_self = np.unique(self_key, return_inverse=True)
    width = int(gpu.max()) + 2
    self_codes = np.array([ep_ix.setdefault(
        cols.nodes[k // width] + (f":{k % width - 1}" if k % width else ""), len(ep_ix))
        for k in uniq_self.tolist()], dtype=np.int64)
    a = self_codes[inv_self.reshape(-1)]
    uniq_peer, inv_peer = np.unique(cols.peer[idx], return_inverse=True)
    peer_codes = np.array([ep_ix.setdefault(cols.peers[p], len(ep_ix))
                           for p in uniq_peer.tolist()], dtype=np.int64)
    b = peer_codes[inv_peer.reshape(-1)]
    keep = a != b
    idx, coh, a, b = idx[keep], coh[keep], a[keep], b[keep]
    if idx.shape[0] == 0:
        return Attribution((), ())
    names = list(ep_ix)
    ne = len(names)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    pkeys, pid = np.unique((coh * ne + lo) * ne + hi, return_inverse=True)
    pid = pid.reshape(-1)
    npairs = pkeys.shape[0]
    p_coh, rest = np.divmod(pkeys, ne * ne)
    p_lo, p_hi = np.divmod(rest, ne)
    cnt = np.bincount(pid, minlength=npairs)
    flagged = jd.kind[idx] != NONE
    nflag = np.bincount(pid, weights=flagged, minlength=npairs)
    slow = (nflag > 0) & (2 * nflag >= cnt)
    sev = np.zeros(npairs, dtype=np.int8)
    np.maximum.at(sev, pid, jd.severity[idx])
    sev[~slow] = 0
    # a pair's value and score: the mean of its readings (usually both directions of one link)
    value = np.bincount(pid, weights=cols.value[idx], minlength=npairs) / cnt
    sc = jd.score[idx]
    fin = np.isfinite(sc)
    nfin = np.bincount(pid, weights=fin, minlength=npairs)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.bincount(pid, weights=np.where(fin, sc, 0.0), minlength=npairs) / nfin
    score[nfin < cnt] = np.nan

    # endpoints: each pair counts for both of its ends
    both = np.concatenate([np.arange(npairs), np.arange(npairs)])
    ekeys, eid = np.unique(np.concatenate([p_coh * ne + p_lo, p_coh * ne + p_hi]),
                           return_inverse=True)
    eid = eid.reshape(-1)
    nend = ekeys.shape[0]
    e_pairs = np.bincount(eid, minlength=nend)
    e_slow = np.bincount(eid, weights=slow[both], minlength=nend)
    with np.errstate(invalid="ignore"):
        e_off = np.bincount(eid, weights=score[both] >= policy.node_gpu_z, minlength=nend)
    order = np.lexsort((score[both], eid))
    starts = np.concatenate([[0], np.cumsum(e_pairs)[:-1]])
    s_sorted = score[both][order]
    med = (s_sorted[starts + (e_pairs - 1) // 2] + s_sorted[starts + e_pairs // 2]) / 2
    has_nan = np.bincount(eid, weights=~np.isfinite(score[both]), minlength=nend) > 0
    med[has_nan] = np.nan
    frac = policy.pair_node_frac
    with np.errstate(invalid="ignore"):
        mostly_slow = (e_slow > 0) & (e_slow >= frac * e_pairs)
        all_off = (e_off >= frac * e_pairs) & (med >= policy.node_z)
    blamed_mask = (e_pairs >= policy.pair_node_min) & (mostly_slow | all_off)

    by_pair = np.argsort(pid, kind="stable")
    p_start = np.concatenate([[0], np.cumsum(cnt)[:-1]])

    def pair(q: int) -> Pair:
        readings = idx[by_pair[p_start[q]:p_start[q] + cnt[q]]]
        p = Pair(int(p_coh[q]), names[int(p_lo[q])], names[int(p_hi[q])])
        p.readings = readings.tolist()
        p.flagged = readings[jd.kind[readings] != NONE].tolist()
        p.slow = bool(slow[q])
        p.severity = int(sev[q])
        p.value = float(value[q])
        p.score = float(score[q])
        return p

    blamed: list[Blame] = []
    ends_of = np.split(both[order], np.cumsum(e_pairs)[:-1])
    for g in np.nonzero(blamed_mask)[0].tolist():
        plist = [pair(int(q)) for q in ends_of[g].tolist()]
        ep = names[int(ekeys[g] % ne)]
        blamed.append(Blame(int(ekeys[g] // ne), ep, tuple(plist),
                            tuple(p for p in plist if p.slow), float(med[g])))
    blamed_keys = ekeys[blamed_mask]
    explained = np.isin(p_coh * ne + p_lo, blamed_keys) | np.isin(p_coh * ne + p_hi, blamed_keys)
    links = []
    e_index = {int(k): i for i, k in enumerate(ekeys.tolist())}
    for q in np.nonzero(slow & ~explained)[0].tolist():
        na = int(e_pairs[e_index[int(p_coh[q] * ne + p_lo[q])]])
        nb = int(e_pairs[e_index[int(p_coh[q] * ne + p_hi[q])]])
        links.append((pair(q), na, nb))
    return Attribution(tuple(blamed), tuple(links))

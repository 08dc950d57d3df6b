"""Folding node names: the one-range fast path gives ClusterShell's own answer."""

from __future__ import annotations

import random

import pytest
from ClusterShell.NodeSet import NodeSet

from provision.nodes import fold

_rng = random.Random(3)
CASES = [["gpu003", "gpu017"], ["gpu1", "gpu10", "gpu2"], ["gpu01", "gpu1", "gpu001"], ["n1"],
         [], ["a1", "b2"], ["gpu00005", "gpu00001", "gpu00002"], ["node-1", "node-2", "node-10"],
         ["x.y1", "x.y3"], ["gpu0", "gpu00"], ["gpu1", "gpu1"], ["g1", "g2", "gx"],
         ["r1n1", "r1n2"], [f"gpu{i}" for i in _rng.sample(range(100_000), 3000)],
         [f"gpu{i:05d}" for i in _rng.sample(range(1, 100_000), 5000)]]


@pytest.mark.parametrize("names", CASES, ids=lambda c: ",".join(c[:3]) or "empty")
def test_fold_matches_clustershell(names: list[str]) -> None:
    assert fold(names) == str(NodeSet.fromlist(names))

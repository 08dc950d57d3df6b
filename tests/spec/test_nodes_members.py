"""Expanding node sets: the plain-form fast path gives ClusterShell's own answer.

``provision.nodes.members`` expands the plain forms itself and hands every other
pattern to ClusterShell. Each generated pattern is expanded both ways: the same
nodes in the same order, or (for an invalid one) the same error with the same
message, and the fast path never accepts a pattern ClusterShell refuses.
"""

from __future__ import annotations

import random

import pytest
from ClusterShell.NodeSet import NodeSet, NodeSetParseError

from provision.nodes import NodeSetError, _plain_members, members

_PREFIXES = ["gpu", "node-", "gpu.ib", "x_y", "", "r1n", "gpu0", "a-b.c", "GPU"]
_SUFFIXES = ["", "-ib", ".bmc", "x", "7", "[1-2]", "-[3,5]", " "]


def _index(rng: random.Random) -> str:
    n = rng.choice([0, 1, 2, 7, 9, 10, 99, 100, 101, 999, 1000, rng.randrange(10**7)])
    return str(n).zfill(rng.choice([0, 0, 1, 2, 3, 4, 5])) if rng.random() < 0.9 else ""


def _range(rng: random.Random) -> str:
    begin = _index(rng)
    kind = rng.random()
    if kind < 0.35:
        return begin
    if kind < 0.85:  # begin-end, usually the same width and in order
        if begin and rng.random() < 0.8:
            width = len(begin) if begin.startswith("0") else 0
            end = str(int(begin) + rng.choice([0, 1, 3, 10, 150, -1])).zfill(width)
        else:
            end = _index(rng)
        text = f"{begin}-{_near(begin, end)}"
    else:
        text = f"{begin}-{_near(begin, _index(rng))}/{rng.choice(['1', '2', '3', '0', '01', 'x'])}"
    return text if rng.random() < 0.9 else text + "/" + rng.choice(["2", "1"])


def _near(begin: str, end: str) -> str:
    """``end``, or a near one where the range would be long (expanding it only takes time)."""
    if begin.isdigit() and end.isdigit() and int(end) - int(begin) > 3000:
        return str(int(begin) + 3000).zfill(len(begin) if begin.startswith("0") else 0)
    return end


def _term(rng: random.Random) -> str:
    prefix = rng.choice(_PREFIXES)
    kind = rng.random()
    if kind < 0.55:
        ranges = ",".join(_range(rng) for _ in range(rng.choice([1, 1, 2, 3])))
        body = f"[{ranges}]" if rng.random() < 0.95 else rng.choice([f"[{ranges}", f"{ranges}]"])
    elif kind < 0.9:
        body = _index(rng)
    else:
        body = rng.choice(["[]", "[,1]", "[1-]", "[-3]", "[ 1-2]", "][", "[[1]]", "@grp", "!", "%"])
    suffix = rng.choice(_SUFFIXES) if rng.random() < 0.25 else ""
    return f"{prefix}{body}{suffix}"


def _pattern(rng: random.Random) -> str:
    text = ",".join(_term(rng) for _ in range(rng.choice([1, 1, 1, 2, 3, 4])))
    if rng.random() < 0.05:
        text = rng.choice([text + ",", "," + text, text.replace(",", ",,", 1), " " + text])
    return text


def _clustershell(pattern: str) -> list[str] | type[BaseException]:
    try:
        return list(NodeSet(pattern))
    except Exception as exc:  # the class is what gets compared
        return type(exc)


PATTERNS = sorted({_pattern(random.Random(seed)) for seed in range(6000)})
KNOWN = ["gpu[001-016]", "head01", "head01,gpu[001-004]", "gpu[1-10/3],gpu2", "gpu[1,01]",
         "gpu[001-004,010]-ib", "[1-3]", "login,gpu1x", "gpu[099-100]", "gpu[0-10]",
         "gpu[00-10]", "gpu[1-016]", "gpu[001-1000]", "gpu[3-1]", "gpu[1-9/0]", "gpu[5/2]",
         "gpu[5/1]", "gpu1,", ",gpu1", "gpu1,,gpu2", "gpu[1-2]x[3]", "r1n[1-3]", "gpu0[1-3]",
         "gpu[1-2]3", "gpu 1", "gpu[]", "gpu[1-2", "gpu1-2]", "a%b1", "", "gpu\n"]


def test_the_generated_patterns_cover_both_paths() -> None:
    """The comparison below is not vacuous: many plain, many handed on, many invalid."""
    plain = [p for p in PATTERNS if _plain_members(p) is not None]
    invalid = [p for p in PATTERNS if isinstance(_clustershell(p), type)]
    assert len(PATTERNS) > 4000
    assert len(plain) > 1000, len(plain)
    assert len(PATTERNS) - len(plain) - len(invalid) > 200   # valid, but ClusterShell's to read
    assert len(invalid) > 500, len(invalid)


@pytest.mark.parametrize("chunk", range(8))
def test_members_match_clustershell(chunk: int) -> None:
    for pattern in [*KNOWN, *PATTERNS][chunk::8]:
        expected = _clustershell(pattern)
        plain = _plain_members(pattern)
        if isinstance(expected, list):
            assert members(pattern) == expected, pattern
            assert plain is None or plain == expected, pattern
            continue
        assert plain is None, f"{pattern!r}: the fast path accepted what ClusterShell refuses"
        wanted = NodeSetError if issubclass(expected, NodeSetParseError) else expected
        with pytest.raises(wanted) as caught:
            members(pattern)
        if wanted is NodeSetError:
            with pytest.raises(NodeSetParseError) as original:
                NodeSet(pattern)
            assert str(caught.value) == str(original.value), pattern


def test_the_usual_spec_forms_take_the_fast_path() -> None:
    for pattern in ("gpu[001-016]", "head01", "head[01-02]", "gpu[001-004,010]",
                    "login01,head01", "gpu[0001-1024]-ib"):
        assert _plain_members(pattern) == list(NodeSet(pattern)), pattern

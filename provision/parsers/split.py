"""Splitting one file that holds several tools' outputs (a node's whole acceptance log).

Each tool's output starts at a line only that tool prints (``# nThread``,
``CA 'mlx5_0'``, ``hca_id:``, ``==============NVSMI LOG``, a perftest banner,
...). :func:`split` finds those start lines and cuts the file there; text
before the first start belongs to the first block, and consecutive starts of
the same tool stay one block (ibstat prints one ``CA`` line per adapter).
Kernel-log lines (``NVRM: Xid``, ``[ 12.3] ...``) are taken out wherever they
stand and form one kernel-log block of their own, so a Xid pasted above an
``nvidia-smi -q`` output is read as a Xid and the ``-q`` output as itself.

The scan is one pass of a literal-prefix regex over the text (no per-line
Python work), so a 50 MB single-tool log costs a fraction of its parse.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import chain, pairwise

#: where each tool's output starts: (tool, regex for the whole start line)
_STARTS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((t, re.compile(p)) for t, p in (
    ("nccl-tests", r"^# (?:nThread \d|Collective test starting|nccl-tests version)"),
    ("dcgmi-diag", r"\|\s*Diagnostic\s*\|\s*Result\s*\||DCGM GPU Diagnostic|"
                   r"^Successfully ran diagnostic"),
    ("perftest", r"^\s*(?:RDMA_Write|RDMA_Read|Send|Atomic(?: \w+)?|RDMA_Write_imm)\s+"
                 r"(?:BW|Latency|Lat) Test\s*$"),
    ("nvbandwidth", r"^nvbandwidth Version|^Running \w+_(?:ce|sm)\.\s*$"),
    ("gpu-burn", r"^Burning for \d+|^Initialized device \d+ with|Couldn't init a GPU test"),
    ("ibstatus", r"^Infiniband device '[^']+' port \d+ status:"),
    ("ibv_devinfo", r"^hca_id:\s*\S+"),
    ("ibstat", r"^CA '[^']+'\s*$|^ibpanic:"),
    ("nvidia-smi-topo", r"^\s*(?:\x1b\[4m)?\s*GPU0\b.*(?:CPU Affinity|GPU1)"),
    ("nvidia-smi-nvlink", r"^\s*Link 0: "),
    ("nvidia-smi-q", r"^=+NVSMI LOG=+"),
    ("nvidia-smi-query-gpu", r"^\s*(?:name|index|pci\.bus_id|uuid|timestamp|gpu_name|"
                             r"driver_version|serial)\s*,\s*[\w.]+\s*(?:,|$)"),
))
_START_OF = dict(_STARTS)
_ALL_TOOLS = tuple(_START_OF)
#: which tools a prefilter literal can start (the rest: try every tool)
_CANDIDATES = {"# nThread": ("nccl-tests",), "# Collective test": ("nccl-tests",),
               "# nccl-tests version": ("nccl-tests",), "hca_id:": ("ibv_devinfo",),
               "CA '": ("ibstat",), "Infiniband device '": ("ibstatus",),
               "NVSMI LOG": ("nvidia-smi-q",), "Link 0: ": ("nvidia-smi-nvlink",)}
#: lines a block's start may reach back over: blank lines, and a table's top border or the
#: ``GPU N: ...`` line that heads an nvlink block
_BLANK = re.compile(r"^\s*$")
_BORDER = re.compile(r"^[\s+*=|-]*$")
_LEAD: dict[str, re.Pattern[str]] = {
    "dcgmi-diag": _BORDER, "perftest": _BORDER, "nvbandwidth": _BORDER,
    "nvidia-smi-nvlink": re.compile(r"^\s*$|^GPU \d+: .*\(UUID"),
}
#: the words that begin every start line above (after blanks or table borders), found in
#: one regex pass that only tries them at line starts
_LEADING = " \t|+*=>{\"-"
_PREFILTER_BODY = (
    r"[ \t|+*=>{\"-]*(?:# nThread|# Collective test|# nccl-tests version|Diagnostic|"
    r"DCGM GPU Diagnostic|Successfully ran|RDMA_Write|RDMA_Read|Send |Atomic|"
    r"nvbandwidth Version|Running |Burning for|Initialized device|Couldn't init|"
    r"Infiniband device '|hca_id:|CA '|ibpanic:|GPU0|Link 0: |NVSMI LOG|name, |index, |"
    r"pci.bus_id|uuid, |timestamp, |driver_version, |serial, )")
#: a literal newline first lets the regex engine skip to line starts instead of trying every
#: offset (4x faster on a 50 MB log); the first line is matched with a newline put before it
_PREFILTER = re.compile("\n" + _PREFILTER_BODY)
#: a kernel-log line about a GPU, and the time-stamped lines around it
_KERNEL_WORDS = ("NVRM: Xid", "SXid (", "NVRM: GPU", "fallen off the bus")
_KERNEL_EVENT = re.compile("|".join(map(re.escape, _KERNEL_WORDS)))
#: every word above holds one of these
_KERNEL_PREFILTER = ("Xid", "NVRM", "fallen off the bus")
_KERNEL_LINE = re.compile(r"^\s*\[\s*\d+\.\d+\]|^\s*\[\w{3} \w{3}|"
                          r"^\w{3}\s+\d+ [\d:]{8} \S+ kernel:|"
                          r"^\s*\d{4}-\d\d-\d\dT[\d:,.+-]+ \S+ kernel:|^kern\s*:|"
                          r"^\s*\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[,.]\d+[+-]\d\d:?\d\d\s")


@dataclass(frozen=True)
class Segment:
    """One tool's part of a file: its lines (1-based, in file order) and its text."""

    tool: str
    lines: tuple[tuple[int, int], ...]  # ranges (first, last), inclusive
    text: str  # the file's text with every other line blanked (line numbers stay true)

    def where(self) -> str:
        """``12-40`` or ``1, 7-9``: which lines went to this tool."""
        return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in self.lines)


def start_offsets(text: str) -> list[tuple[int, str]]:
    """(offset, tool) of every line that starts a tool's output, in order. A start line
    printed many times (one per run of a long log) is judged once."""
    return list(_each_start(text, 0, len(text), {}))


def _each_start(text: str, lo: int, hi: int, tool_of: dict[str, str | None]
                ) -> Iterator[tuple[int, str]]:
    """:func:`start_offsets` of ``text[lo:hi]`` (``lo`` and ``hi`` at line starts or the
    end), one at a time and without copying it; ``tool_of``: the tool each start line's
    text starts, kept across calls."""
    hits: list[tuple[int, str]] = []
    if lo == 0:
        nl = text.find("\n", 0, hi)
        first = _PREFILTER.match("\n" + text[:hi if nl < 0 else nl])
        if first:
            hits.append((0, first[0][1:]))
    for at, word in chain(hits, ((m.start() + 1, m[0][1:])
                                 for m in _PREFILTER.finditer(text, max(lo - 1, 0), hi))):
        end = text.find("\n", at)
        line = text[at:end if end >= 0 else len(text)]
        if line in tool_of:
            tool = tool_of[line]
        else:
            tool = tool_of[line] = next(
                (t for t in _CANDIDATES.get(word.lstrip(_LEADING), _ALL_TOOLS)
                 if _START_OF[t].search(line)), None)
        if tool is not None:
            yield at, tool


def first_tool(text: str) -> str | None:
    """The tool of the first line of ``text`` that starts a tool's output (the first of
    :func:`start_offsets`), found without looking at the lines after it."""
    return next((tool for _, tool in _each_start(text, 0, len(text), {})), None)


def alone(tool: str, text: str, lo: int, hi: int, known: Sequence[tuple[int, int]]) -> bool:
    """Whether ``text[lo:hi]`` holds nothing that :func:`split` would cut out of ``tool``'s
    output: no kernel-log word about a GPU, and no line that starts another tool's output
    outside the spans ``known`` (in order, at line starts), where the caller has read
    ``tool``'s output and knows that no other tool's start line is in it. A reader that
    read a piece of a large log can say so without a scan of every line."""
    if _has_kernel_words(text, lo, hi):
        return False
    tool_of: dict[str, str | None] = {}
    at = lo
    for a, b in (*known, (hi, hi)):
        if a > at and (at == 0 or _PREFILTER.search(text, at - 1, a)) and any(
                t != tool for _, t in _each_start(text, at, a, tool_of)):
            return False  # a line that may start a tool's output (one search first: 9,000
        at = max(at, b)   # spans between runs in a piece of a 50 MB log)
    return True


def scan(text: str) -> tuple[list[tuple[int, str]], bool]:
    """:func:`start_offsets` of ``text`` and whether it holds a kernel-log word about a GPU;
    a text over :data:`~provision.forked.PARALLEL_BYTES` is scanned in pieces on every CPU
    (cut at line starts: no start line or word spans two pieces), 0.2 s of a 50 MB log."""
    from provision.forked import PARALLEL_BYTES, map_forked, workers

    n = workers() if len(text) >= PARALLEL_BYTES else 1
    cuts = [0]
    for k in range(1, n):
        at = text.find("\n", max(cuts[-1], len(text) * k // n)) + 1
        if 0 < at < len(text):
            cuts.append(at)
    cuts.append(len(text))
    got = map_forked(partial(_scan_piece, text), list(pairwise(cuts))) if len(cuts) > 2 \
        else None
    if got is None:
        return _scan_piece(text, 0, len(text))
    return [o for offsets, _ in got for o in offsets], any(k for _, k in got)


def _scan_piece(text: str, lo: int, hi: int) -> tuple[list[tuple[int, str]], bool]:
    return list(_each_start(text, lo, hi, {})), _has_kernel_words(text, lo, hi)


def _has_kernel_words(text: str, lo: int = 0, hi: int | None = None) -> bool:
    """Whether ``text[lo:hi]`` holds a kernel-log word about a GPU (searched in place: no
    copy of the piece). Literal searches: one regex over a 50 MB log costs 3x as much; the
    words share shorter ones, found faster where they are absent (0.07 s against 0.1 s on
    50 MB)."""
    end = len(text) if hi is None else hi
    return any(text.find(w, lo, end) >= 0 for w in _KERNEL_PREFILTER) and any(
        text.find(w, lo, end) >= 0 for w in _KERNEL_WORDS)


def starts(text: str, offsets: list[tuple[int, str]] | None = None) -> list[tuple[int, str]]:
    """(0-based line index, tool) of every line that starts a tool's output, in order
    (``offsets``: :func:`start_offsets`, when the caller has them already)."""
    out = []
    index = prev = 0
    for off, tool in start_offsets(text) if offsets is None else offsets:
        index += text.count("\n", prev, off)
        prev = off
        out.append((index, tool))
    return out


def _ranges(indexes: list[int]) -> tuple[tuple[int, int], ...]:
    out: list[list[int]] = []
    for i in indexes:
        if out and out[-1][1] == i:
            out[-1][1] = i + 1
        else:
            out.append([i + 1, i + 1])
    return tuple((a, b) for a, b in out)


def split(text: str, offsets: list[tuple[int, str]] | None = None,
          has_kernel: bool | None = None) -> list[Segment]:
    """The tools' blocks in ``text``; empty when fewer than two tools are in it (the
    caller then reads the whole file as one tool). ``offsets`` and ``has_kernel`` are
    :func:`scan`'s, when the caller has them already."""
    offsets = start_offsets(text) if offsets is None else offsets
    if has_kernel is None:
        has_kernel = _has_kernel_words(text)
    if len({t for _, t in offsets}) + has_kernel < 2:
        return []
    marks = starts(text, offsets)
    lines = text.split("\n")
    kernel: list[int] = []
    if has_kernel:
        kernel = [i for i, ln in enumerate(lines)
                  if _KERNEL_EVENT.search(ln) or _KERNEL_LINE.match(ln)]
    taken = set(kernel)
    # cut where the tool changes; a block reaches back over its lead lines
    cuts: list[tuple[int, str]] = []
    for i, tool in marks:
        if cuts and cuts[-1][1] == tool:
            continue
        j = i
        floor = cuts[-1][0] + 1 if cuts else 0
        lead = _LEAD.get(tool, _BLANK)
        while j - 1 >= floor and j - 1 not in taken and lead.match(lines[j - 1]):
            j -= 1
        cuts.append((j, tool))
    if cuts:
        cuts[0] = (0, cuts[0][1])  # prompts and prose before the first tool go with it
    segments: list[Segment] = []
    bounds = [c[0] for c in cuts[1:]] + [len(lines)]
    for (a, tool), b in zip(cuts, bounds, strict=True):
        idx = [i for i in range(a, b) if i not in taken]
        while idx and not lines[idx[-1]].strip():
            idx.pop()
        while idx and not lines[idx[0]].strip():
            idx.pop(0)
        if idx:
            segments.append(_segment(tool, lines, idx))
    if kernel:
        segments.append(_segment("dmesg-xid", lines, kernel))
    segments.sort(key=lambda s: s.lines[0][0])
    return segments


def _segment(tool: str, lines: list[str], idx: list[int]) -> Segment:
    keep = set(idx)
    first, last = idx[0], idx[-1]
    body = "\n".join(lines[i] if i in keep else "" for i in range(first, last + 1))
    return Segment(tool, _ranges(idx), "\n" * first + body)


__all__ = ["Segment", "alone", "first_tool", "scan", "split", "start_offsets", "starts"]

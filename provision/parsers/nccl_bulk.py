"""nccl-tests logs read in bulk: the JSON lines of every run, at close to disk speed.

A job that runs ``*_perf`` binaries one after another, or logs concatenated,
is 100,000s of lines; reading them one by one in Python and building a record
object per row costs seconds per 50 MB. Most runs are printed exactly as
nccl-tests prints them, so this reader matches a whole run with one regular
expression over line prefixes (header, ``Rank`` lines, the current column
header, result rows, ``Out of bounds`` and ``Avg bus bandwidth``, and the
lines around them that the tolerant reader ignores), checks its rows and rank
lines column by column with C-level string operations, and writes its records
as JSON lines joined from templates.

A run with anything else in it (an error message, an older layout, a row that
does not fit, ``NCCL INFO`` lines among the rows, ranks that collide) is read
by the tolerant reader of :mod:`provision.parsers.nccl_tests` instead, from
where it starts to the next run that can be read in bulk, with the state the
tolerant reader would have there. Both write their records through the same
:func:`~provision.parsers.nccl_tests.summary` and cell conversion
(``_num``); a test holds them equal on every nccl-tests fixture.

A log over :data:`~provision.forked.PARALLEL_BYTES` is cut where runs start into one piece per CPU;
forked processes read the pieces after the first while this one reads the first.
The joined pieces are what the whole log gives when each piece but the last ends
with a run read in bulk; otherwise, or when a piece raises or a reader dies, the
whole log is read in one process.
"""

from __future__ import annotations

import mmap
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from itertools import pairwise
from typing import Any

from provision.errors import InputError
from provision.forked import PARALLEL_BYTES, first_share, map_forked, workers
from provision.gcutil import paused_gc
from provision.measurement import HOLE, json_numbers, json_text, line_template
from provision.parsers.base import record, require_clean, resolve_node, to_float
from provision.parsers.lines import JsonLines
from provision.parsers.nccl_tests import (
    _DEFAULT_COLS,
    _ERROR,
    _TEST,
    IN_PLACE,
    OUT_OF_PLACE,
    TOOL,
    _num,
    _result,
    _Run,
    by_size_detail,
    kept_runs,
    measurements,
    read_lines,
    run_peer,
    summary,
)

_B = r"[^\S\n]"  # a blank (of any kind) within one line
_EOL = rf"{_B}*\n"
#: a line that is neither a '#' line nor a row: the caller looks into these for errors
_OTHER = rf"(?!{_B}*[#0-9])[^\n]*\n"
#: '#' lines nccl-tests prints that the tolerant reader does nothing with (the test's name
#: aside): the common ones by their words, any other one when it holds no word that reader
#: acts on (a rank, a column header, a run's start, its averages)
_QUIET = (rf"{_B}*#(?:{_EOL}|{_B}Using devices{_EOL}|{_B}+out-of-place{_B}+in-place{_EOL}"
          rf"|{_B}+\(B\)(?:{_B}+\([\w/]+\))*{_EOL}|{_B}Collective test concluded:{_B}*\S*{_EOL}"
          rf"|(?!{_B}+Rank|#*{_B}*(?:size|bytes)(?:{_B}|\n)|{_B}nThread)"
          r"(?![^\n]*(?:Avg bus|Out of bounds|test starting))[^\n]*\n)")
_VERSION_LINE = rf"{_B}*NCCL version{_B}+\S[^\n]*\n"
_RANK_LINE = rf"{_B}*#{_B}+Rank{_B}[^\n]*\n"  # checked column by column afterwards
_RUN = re.compile(
    rf"(?P<pre>(?:{_QUIET}|{_OTHER})*)"  # what comes before a file's first run
    rf"(?:{_B}*# Collective test starting:{_B}*(?P<test>\S+)"
    r"(?![^\n]*(?:Avg bus|Out of bounds))[^\n]*\n)?"
    rf"{_B}*# nThread(?:(?:{_B}+[\w:().,=+-]+)*{_EOL}"
    r"|(?![^\n]*(?:Avg bus|Out of bounds|test starting))[^\n]*\n)"
    rf"(?:{_QUIET}|{_VERSION_LINE}|{_B}*\n)*"
    rf"(?P<ranks>(?:{_RANK_LINE})*)"
    rf"(?:{_QUIET}|{_VERSION_LINE}|{_B}*\n)*"
    rf"{_B}*#{_B}+size{_B}+count{_B}+type{_B}+redop{_B}+root{_B}+time{_B}+algbw{_B}+busbw"
    rf"{_B}+\#wrong{_B}+time{_B}+algbw{_B}+busbw{_B}+\#wrong{_EOL}"
    rf"(?:{_QUIET})*"
    rf"(?P<rows>(?:{_B}*[0-9][^\n]*\n)+)"
    rf"(?:{_B}*#{_B}*Out of bounds values{_B}*:{_B}*(?P<oob>[0-9]+)(?!\d)(?![^\n]*Avg bus)"
    r"[^\n]*\n)?"
    rf"{_B}*#{_B}*Avg bus bandwidth{_B}*:{_B}*(?P<avg>\S+)[^\n]*\n"
    rf"(?P<tail>(?:{_QUIET}|{_OTHER})*)")
#: the line that starts a run (after blanks), as the tolerant reader knows it
_MARKER = re.compile(rf"{_B}*# (?:nThread|Collective test starting)")
_NEXT_MARKER = re.compile(rf"\n{_B}*# (?:nThread|Collective test starting)")
_STARTING = re.compile(rf"{_B}*# Collective test starting")
_COLUMNS = 13  # cells of a row in the current layout
_PLAIN = re.compile(r"[0-9.]*")  # cells that ``float`` reads as ``_num`` does


@dataclass(frozen=True)
class BulkRecords:
    """What a log gave: its records as JSON lines, how many runs, the lines kept out, and
    how many of the runs were read in bulk (the rest by the tolerant reader)."""

    lines: JsonLines
    runs: int
    skipped: tuple[int, ...]
    bulk: int = 0
    clean: bool = True  # a piece of a log: it ends with a run read in bulk


class _Read(_Run):
    """A run the bulk reader can read: its match, and once checked its JSON lines. Nothing
    else of a run is kept: 100,000s of them are made."""

    devices = ()  # type: ignore[assignment]  # checked: its ranks do not collide

    def __init__(self, m: re.Match[str]) -> None:  # pylint: disable=super-init-not-called
        self.m = m
        self.lines: list[str] = []

    @property
    def has_output(self) -> bool:  # its rows, by the pattern it matched
        return True


def jsonl_runs(text: str, *, node: str | None = None, source_name: str = "<stdin>",
               check: str | None = None) -> BulkRecords:
    """The records of every run in ``text`` as JSON lines, equal to what
    :func:`~provision.parsers.nccl_tests.parse_runs` and ``measurements`` give."""
    job = _Job.of(text, node, source_name, check)
    bounds = _bounds(job.text, _workers(len(job.text)))
    if len(bounds) > 2:
        got = _in_parallel(job, bounds)
        if got is not None:
            return got
    return job.piece(0, len(job.text), whole=True)


#: ``alone(text, start, end, spans)``: whether ``text[start:end]`` holds nothing but the runs
#: read in bulk at ``spans`` and what lies between them (:func:`provision.parsers.split.alone`)
Alone = Callable[[str, int, int, list[tuple[int, int]]], bool]


class _NotAlone(Exception):
    """A piece holds more than runs, or another piece said so."""


#: how much longer than it took itself to answer a piece that holds runs alone waits for the
#: others' answers (as large as it, they answer in about as long), before it reads on
#: regardless; a piece that died never answers (the caller then reads the log itself)
AGREE_WITHIN = 1.0


class _Agreement:
    """The pieces' answers to ``question``, in memory the forked pieces share: one byte per
    piece, 0 while it has not answered, 1 when it holds runs alone, 2 when it holds more
    (or raised).

    A piece answers once it has matched its runs (a fifth of its reading), then waits for
    the others before it reads on; so a log with another tool's output in one piece costs
    the others that fifth, not their whole reading. It waits once: a piece matches its runs
    again when one does not read exactly, and answers again without waiting."""

    __slots__ = ("index", "question", "said", "started", "waited")

    def __init__(self, question: Alone, said: mmap.mmap, index: int) -> None:
        self.question, self.said, self.index = question, said, index
        self.started = time.monotonic()
        self.waited = False

    def settle(self, text: str, start: int, end: int, read: list[_Read]) -> None:
        """Answer for this piece (``read``: its runs matched for bulk reading) and wait for
        the others' answers; :class:`_NotAlone` when any holds more."""
        ok = self.question(text, start, end, [(r.m.end("pre"), r.m.start("tail")) for r in read])
        self.said[self.index] = 1 if ok else 2
        if ok and not self.waited:
            self.waited = True
            now = time.monotonic()
            deadline = now + (now - self.started) + AGREE_WITHIN
            while 0 in self.said[:] and 2 not in self.said[:] and time.monotonic() < deadline:
                time.sleep(0.001)
        self.hold()

    def give_up(self) -> None:
        """This piece will give nothing (it raised): the others stop at their next step."""
        self.said[self.index] = 2

    def hold(self) -> None:
        """:class:`_NotAlone` when a piece said it holds more than runs."""
        if 2 in self.said[:]:
            raise _NotAlone


def jsonl_runs_alone(text: str, alone: Alone, *, node: str | None = None,
                     source_name: str = "<stdin>", check: str | None = None
                     ) -> BulkRecords | None:
    """:func:`jsonl_runs` of a large log, where each piece read on every CPU also asks
    ``alone`` whether it holds anything but runs (another tool's output, a kernel log):
    None when one does, or when the log is small or read in one process, and the caller
    then looks at the whole text first. The pieces tell each other their answers
    (:class:`_Agreement`). What a piece raises also gives None: the caller's reading raises
    it in its turn."""
    n = _workers(len(text))
    if n < 2:
        return None
    try:
        job = _Job.of(text, node, source_name, check)
    except InputError:
        return None
    if len(job.text) - len(text) not in (0, 1) or not job.text.startswith(text):
        return None  # cleaned again: not the text the caller would look at
    bounds = _bounds(job.text, n)
    if len(bounds) <= 2:
        return None
    said = mmap.mmap(-1, len(bounds) - 1)  # anonymous and shared: the forked pieces write it
    got = map_forked(partial(_read_piece_alone, job, alone, said),
                     [(i, lo, hi) for i, (lo, hi) in enumerate(pairwise(bounds))])
    if got is None or any(g is None for g in got):
        return None
    return _joined(got) or job.piece(0, len(job.text), whole=True)


@dataclass(frozen=True)
class _Job:
    """One log to read: its text and what its records say besides the numbers."""

    text: str
    node: str | None
    source_name: str
    check: str

    @classmethod
    def of(cls, text: str, node: str | None, source_name: str, check: str | None) -> _Job:
        text = require_clean(TOOL, text, source_name)
        if not text.endswith("\n"):
            text += "\n"  # every line ends in one: a blank last line changes nothing
        return cls(text, node, source_name, check or TOOL)

    def piece(self, start: int, end: int, *, whole: bool = False,
              alone: _Agreement | None = None) -> BulkRecords:
        """The records of the runs from ``start`` to ``end`` (where runs start): what the
        whole text's reading gives for them, when the piece ends with a run read in bulk
        (``clean``). An error the whole text would raise is raised. With ``alone``,
        :class:`_NotAlone` is raised when a piece holds more than runs."""
        text = self.text
        writer = _Writer(self.node, self.source_name, self.check)
        unread: set[int] = set()  # where a run starts that matched but does not read exactly
        with paused_gc():  # millions of words and lines, none of them garbage until the end
            while True:  # a run that does not read changes where the next ones start: again
                lines = _LineNumbers(text)
                runs = _plan(text, start, end, lines, unread)
                read = [r for r in runs if isinstance(r, _Read)]
                if alone is not None:
                    alone.settle(text, start, end, read)
                failed = writer.runs(text, read)
                if alone is not None:
                    alone.hold()
                if not failed:
                    break
                unread |= failed
        out_lines: list[str] = []
        skipped: list[int] = []
        kept = kept_runs(runs, lines.last, self.source_name)
        for r in kept:
            if isinstance(r, _Read):
                out_lines.extend(r.lines)
            else:
                result = _result(r, self.node, self.source_name)
                out_lines.extend(x.to_json() for x in measurements(result, check=self.check))
                skipped.extend(result.skipped)
        clean = whole or (bool(runs) and isinstance(runs[-1], _Read) and runs[-1].m.end() == end)
        return BulkRecords(JsonLines(out_lines), len(kept), tuple(skipped),
                           sum(isinstance(r, _Read) for r in kept), clean)


def _workers(size: int) -> int:
    """How many processes read a log of ``size`` characters."""
    return 1 if size < PARALLEL_BYTES else workers()


def _bounds(text: str, n: int) -> list[int]:
    """Where ``n`` pieces start and the last ends: each at the first line of a run (its
    ``Collective test starting`` line, else its ``nThread`` line), the caller's first piece
    larger than the forked ones by :func:`~provision.forked.first_share`, so that all end
    together."""
    out = [0]
    first = first_share(n)
    for k in range(1, n):
        share = first + (k - 1) * (1 - first) / (n - 1)
        nxt = _NEXT_MARKER.search(text, max(out[-1] + 1, int(len(text) * share)))
        if nxt is None:
            break
        at = nxt.start() + 1
        before = text.rfind("\n", 0, at - 1) + 1
        if "# nThread" in text[at:at + 60] and _STARTING.match(text, before):
            at = before  # the run starts a line earlier
        if at > out[-1]:
            out.append(at)
    out.append(len(text))
    return out


def _read_piece_alone(job: _Job, alone: Alone, said: mmap.mmap, index: int, start: int,
                      end: int) -> BulkRecords | None:
    """The records of one piece when no piece holds more than runs; None otherwise, or when
    it raised anything (the caller's own reading of the log then raises what it raises:
    a row of a 5,000-digit number is a ValueError only where nccl-tests reads it)."""
    agreement = _Agreement(alone, said, index)
    try:
        return job.piece(start, end, alone=agreement)
    except _NotAlone:
        return None
    except Exception:  # the caller's reading decides what it means
        agreement.give_up()
        return None


def _read_piece(job: _Job, start: int, end: int) -> BulkRecords | None:
    """The records of one piece, None when it raised (the whole text is then read in one
    process, which raises what it raises)."""
    try:
        return job.piece(start, end)
    except InputError:
        return None


def _in_parallel(job: _Job, bounds: list[int]) -> BulkRecords | None:
    """The records of the pieces between ``bounds``, read by forked processes (the first
    piece by this one) and joined in order; None when a piece raised or a piece does not
    end with a run read in bulk (the state the next piece starts from would differ)."""
    got = map_forked(partial(_read_piece, job), list(pairwise(bounds)))
    return None if got is None else _joined(got)


def _joined(got: list[BulkRecords | None]) -> BulkRecords | None:
    """The pieces' records joined in order; None when a piece raised or a piece does not
    end with a run read in bulk (the state the next piece starts from would differ)."""
    if any(g is None or not g.clean for g in got[:-1]) or got[-1] is None:
        return None
    parts = [g for g in got if g is not None]
    lines = JsonLines()
    for g in parts:
        lines.extend(g.lines)  # a forked piece's lines: one text block, not copied
    return BulkRecords(lines, sum(g.runs for g in parts),
                       tuple(s for g in parts for s in g.skipped), sum(g.bulk for g in parts))


def _plan(text: str, start: int, end: int, lines: _LineNumbers, unread: set[int]) -> list[_Run]:
    """The runs from ``start`` to ``end`` in order: those the bulk pattern matches (but for
    ``unread`` ones) and the tolerant reader's, which reads from where no match starts to the
    next line that may start a run, with the state it would have there."""
    runs: list[_Run] = []
    pos = start
    while pos < end:
        if (not runs or runs[-1].has_output) and pos not in unread:  # a new run starts here
            m = _RUN.match(text, pos)
            if m is not None and (m.end() == end or _MARKER.match(text, m.end())):
                runs.append(_Read(m))
                pos = m.end()
                continue
        nxt = _NEXT_MARKER.search(text, pos)
        stop = min(nxt.start() + 1, end) if nxt else end
        line = lines.index(pos)
        if not runs or isinstance(runs[-1], _Read):
            runs.append(_Run(line + 1, _DEFAULT_COLS))
        chunk = text[pos:stop].split("\n")
        chunk.pop()  # what follows the chunk's last newline
        read_lines(chunk, line, lines.last, runs)
        pos = stop
    return runs


class _LineNumbers:
    """0-based line index of an offset, counted only when the tolerant reader needs it."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._at = self._line = 0
        self._last: int | None = None

    def index(self, pos: int) -> int:
        self._line += self.text.count("\n", self._at, pos)
        self._at = pos
        return self._line

    @property
    def last(self) -> int:
        """The index of the last line that is not blank."""
        if self._last is None:
            end = len(self.text)
            while end and self.text[end - 1].isspace():  # rstrip() would copy the text
                end -= 1
            self._last = self.text.count("\n", 0, end)
        return self._last


class _Shapes:
    """The line templates of one check's records, per node, peer, test and run shape: kept
    across the logs one process reads (a directory of 10,000s of one-run logs of the same
    nodes builds each once), and dropped when they grow past :data:`MAX_SHAPES`."""

    def __init__(self) -> None:
        self.templates: dict[tuple[object, ...], tuple[str, str, str]] = {}
        self.by_size: dict[tuple[str, str | None, str], tuple[tuple[str, str, str], ...]] = {}
        self.summaries: dict[tuple[object, ...], tuple[tuple[str, str, int], ...]] = {}

    def __len__(self) -> int:
        return len(self.templates) + len(self.by_size) + len(self.summaries)

    @classmethod
    def of(cls, check: str) -> _Shapes:
        shapes = _SHAPES.get(check)
        if shapes is None or len(shapes) > MAX_SHAPES:
            shapes = _SHAPES[check] = cls()
        return shapes


#: templates kept per check before they are dropped (a few hundred bytes each)
MAX_SHAPES = 200_000
_SHAPES: dict[str, _Shapes] = {}


class _Writer:
    """JSON lines of runs read in bulk, from line templates kept per node, peer and test."""

    def __init__(self, node: str | None, source_name: str, check: str) -> None:
        self.node = node
        self.source_name = source_name
        self.check = check
        shapes = _Shapes.of(check)
        self._templates = shapes.templates
        self._by_size = shapes.by_size
        self._summaries = shapes.summaries

    def _template(self, node: str, metric: str, detail: str, peer: str | None,
                  low: float | None = None, high: float | None = None) -> tuple[str, str, str]:
        key = (node, metric, peer, low, high)
        t = self._templates.get(key)
        if t is None:
            t = self._templates[key] = line_template(record(
                node, metric, 0.0, check=self.check, detail=detail, peer=peer, min=low,
                max=high))
        return t

    def runs(self, text: str, read: list[_Read]) -> set[int]:
        """Write the JSON lines of each run; the starts of those that do not read exactly
        (the tolerant reader must read them). Rank lines and rows are checked for all runs
        at once."""
        devices = _each(_rank_table, [r.m["ranks"] for r in read])
        rows = _each(_row_table, [r.m["rows"] for r in read])
        failed = set()
        for r, d, t in zip(read, devices, rows, strict=True):
            m = r.m
            pre, tail = m.span("pre"), m.span("tail")
            if d is None or t is None or (pre[0] != pre[1] and _ERROR.search(text, *pre)) \
                    or _ERROR.search(text, *tail):
                failed.add(m.start())
            elif not failed:  # else the plan changes: write when it holds
                r.lines = self.run(text, m, d, t)
        return failed

    def _summary(self, node: str, name: str, peer: str | None, ranks: int, largest: int,
                 sizes: int, given: tuple[float | None, ...]) -> tuple[tuple[str, str, int], ...]:
        """The lines of a run's records other than the per-size ones, for each run of its
        shape (the same names, ranks, sizes and cells left empty): each line's text before
        and after its value, and which of ``given`` (busbw and algbw of the largest size,
        average, #wrong, out of bounds) the value is. :func:`summary` says which records a
        run has: it is asked with each value's place in ``given`` for the value."""
        place = [None if v is None else float(k) for k, v in enumerate(given)]
        wrong, oob = place[3], place[4]
        records = summary(name, peer, (), ranks, (largest, place[0], place[1]), place[2],
                          None if wrong is None else int(wrong), sizes,
                          None if oob is None else int(oob))
        out = []
        for r in records:
            a, b, c = self._template(node, r.metric, HOLE, r.peer, r.min, r.max)
            out.append((f"{a}{json_text(r.detail)}{b}", c, int(r.value)))
        return tuple(out)

    def run(self, text: str, m: re.Match[str], devices: tuple[int, tuple[str, ...]],
            rows: _Rows) -> list[str]:
        """One run's JSON lines."""
        ranks, hosts = devices
        sizes, oop, ip, wrong, algbw = rows
        node = resolve_node(TOOL, self.source_name, hosts[0] if hosts else None, self.node)
        name = m["test"] or _first_test(text, ((m.start(), m.start("rows")),
                                               (m.end("rows"), m.end()))) or "nccl-tests"
        peer = run_peer(hosts, node)
        i = sizes.index(max(sizes))  # the first row of the largest size
        oob, alg = m["oob"], _num(algbw[i])
        given = (oop[i], alg, to_float(m["avg"]), None if wrong is None else float(wrong),
                 None if oob is None else float(oob))
        shape = (node, name, peer, ranks, sizes[i], len(sizes), *(v is None for v in given))
        fixed = self._summaries.get(shape)
        if fixed is None:
            fixed = self._summaries[shape] = self._summary(node, name, peer, ranks, sizes[i],
                                                           len(sizes), given)
        oop_values = [v for v in oop if v is not None]
        ip_values = [v for v in ip if v is not None]
        texts = json_numbers([v for _, _, k in fixed if (v := given[k]) is not None]
                             + oop_values + ip_values)
        out = [f"{head}{v}{tail}" for (head, tail, _), v in zip(fixed, texts, strict=False)]
        # per size: out-of-place then in-place, as the tolerant reader writes them
        key = (node, peer, name)
        pieces = self._by_size.get(key)
        if pieces is None:
            pieces = self._by_size[key] = tuple(line_template(record(
                node, "nccl_busbw_by_size", 0.0, check=self.check, peer=peer,
                detail=by_size_detail(name, HOLE, place))) for place in (OUT_OF_PLACE, IN_PLACE))
        (oa, ob, oc), (ia, ib, ic) = pieces
        k_oop = len(out)
        k_ip = k_oop + len(oop_values)
        n = len(sizes)
        if len(oop_values) == n == len(ip_values):  # no N/A cell: two lines a row, built whole
            names = list(map(str, sizes))
            pairs: list[str] = [""] * (2 * n)
            pairs[0::2] = [f"{oa}{z}{ob}{v}{oc}" for z, v in zip(names, texts[k_oop:k_ip],
                                                               strict=True)]
            pairs[1::2] = [f"{ia}{z}{ib}{v}{ic}" for z, v in zip(names, texts[k_ip:],
                                                               strict=True)]
            out += pairs
            return out
        add = out.append
        for size, o, p in zip(map(str, sizes), oop, ip, strict=True):
            if o is not None:
                add(f"{oa}{size}{ob}{texts[k_oop]}{oc}")
                k_oop += 1
            if p is not None:
                add(f"{ia}{size}{ib}{texts[k_ip]}{ic}")
                k_ip += 1
        return out


_Rows = tuple[list[int], list[float | None], list[float | None], int | None, tuple[str, ...]]


def _each(table: Callable[[list[str]], list[Any] | None], blocks: list[str]) -> list[Any]:
    """``table`` of all runs' blocks at once; when that fails, of each run's alone (None
    for a run whose block does not read)."""
    got = table(blocks)
    if got is not None:
        return got
    if len(blocks) == 1:
        return [None]
    return [None if (one := table([b])) is None else one[0] for b in blocks]


#: the blanks between the cells of rank lines and rows as nccl-tests prints them (a line with
#: any other blank does not read here: its run goes to the tolerant reader, whose ``split()``
#: takes every blank; 20 % faster than ``_B`` over 35 MB of such lines)
_SP = r"[ \t]"
#: a rank line as the tolerant reader's ``_RANK`` reads it (its blanks kept to one line)
_RANK_WORDS = re.compile(
    rf"^{_SP}*#{_SP}+Rank{_SP}+([0-9]+){_SP}+(?:Group{_SP}+[0-9]+{_SP}+)?"
    rf"(?:Pid{_SP}+[0-9]+{_SP}+)?on{_SP}+(\S+){_SP}+device{_SP}+[0-9]+{_SP}+\[[^\]\n]*\][^\n]*$",
    re.M)
#: a row of the current layout: 13 cells, size and count digits; captured: size, the
#: out-of-place algbw, busbw and #wrong, the in-place busbw and #wrong
_CELL = rf"{_SP}+(\S+)"
_ROW_CELLS = re.compile(
    rf"^{_SP}*([0-9]+){_SP}+[0-9]+(?:{_SP}+\S+){{4}}{_CELL * 3}(?:{_SP}+\S+){{2}}{_CELL * 2}"
    rf"{_SP}*$", re.M)


def _rank_table(blocks: list[str]) -> list[tuple[int, tuple[str, ...]] | None] | None:
    """Per run (a block of its ``#  Rank N [Group G] [Pid P] on HOST device D [bus] model``
    lines): how many ranks and their hosts in order, or None where two ranks collide (a
    failure only the tolerant reader reports). None when a line does not read as the
    tolerant reader's ``_RANK`` reads it (one match a line proves every one does)."""
    joined = "".join(blocks)
    found = _RANK_WORDS.findall(joined)
    if len(found) != joined.count("\n"):
        return None
    out: list[tuple[int, tuple[str, ...]] | None] = []
    at = 0
    for block in blocks:
        n = block.count("\n")
        these = found[at:at + n]
        hosts = tuple(dict.fromkeys(h for _, h in these))
        collide = len(hosts) > 1 and len({int(r) for r, _ in these}) < n
        out.append(None if collide else (n, hosts))
        at += n
    return out


def _row_table(blocks: list[str]) -> list[_Rows] | None:
    """Per run (a block of its rows in the current 13-column layout, as the tolerant reader
    reads them): sizes, out-of-place and in-place bus bandwidths, the #wrong total and the
    out-of-place algorithm bandwidth cells. None when a line is not such a row."""
    if not blocks:
        return []
    joined = "".join(blocks)
    found = _ROW_CELLS.findall(joined)
    if len(found) != joined.count("\n"):
        return None
    cols = list(zip(*found, strict=True))
    sizes = list(map(int, cols[0]))
    oop, ip, algbw = _cells(cols[2]), _cells(cols[4]), cols[1]
    ints = cols[3] + cols[5]
    digits = "".join(ints)
    plain = digits.isascii() and digits.isdigit() and max(map(len, ints)) < 16
    w_oop, w_ip = (list(map(int, cols[3])), list(map(int, cols[5]))) if plain else ([], [])
    out: list[_Rows] = []
    at = 0
    for block in blocks:
        b = at + block.count("\n")
        if plain:  # what _num then int() give, exactly
            total: int | None = sum(w_oop[at:b]) + sum(w_ip[at:b])
        else:
            wrong = [int(w) for w in map(_num, cols[3][at:b] + cols[5][at:b])
                     if w is not None]
            total = sum(wrong) if wrong else None
        out.append((sizes[at:b], oop[at:b], ip[at:b], total, algbw[at:b]))
        at = b
    return out


def _cells(cells: tuple[str, ...]) -> list[float | None]:
    """Numbers of a column as the tolerant reader's ``_num`` reads them, in one C call when
    every cell is digits and dots."""
    if _PLAIN.fullmatch("".join(cells)):
        try:
            return list(map(float, cells))
        except ValueError:  # "1.2.3": _num's None
            pass
    return list(map(_num, cells))


def _first_test(text: str, spans: tuple[tuple[int, int], ...]) -> str | None:
    """The first ``*_perf`` name in the run's lines outside its rows (the tolerant reader
    does not look for one in a row), as that reader takes it when no ``Collective test
    starting`` line names the test."""
    for start, end in spans:
        at = text.find("_perf", start, end)
        if at >= 0 and (m := _TEST.search(text, max(start, text.rfind("\n", start, at) + 1),
                                           end)):
            return m[1]
    return None


__all__ = ["Alone", "BulkRecords", "jsonl_runs", "jsonl_runs_alone"]

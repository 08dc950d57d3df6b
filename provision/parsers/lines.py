"""Records as JSON lines, held in blocks: what ``forge ingest`` writes, without a string per
line where the lines came back from another process.

A forked reader of a 50 MB log hands back 171,000 JSON lines. As a list they were pickled,
unpickled and joined again before they were written (0.1 s, all of it after the reading).
A :class:`JsonLines` is pickled as one UTF-8 text, an out-of-band buffer of pickle
protocol 5 (:mod:`provision.forked` hands it back as a view of the forked process's
in-memory file), and that block is written out as it is. A block is a list of lines, or
their UTF-8 text joined with newlines (bytes, or a view of them); iterating gives the lines
either way, and two :class:`JsonLines` (or one and a list) are equal when their lines are.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Iterator
from typing import Any

_Block = list[str] | bytes | memoryview


class JsonLines:
    """JSON lines (no newline in any of them) as blocks of lines or of joined text."""

    __slots__ = ("_blocks", "_count")

    def __init__(self, lines: Iterable[str] = ()) -> None:
        first = lines if isinstance(lines, list) else list(lines)
        self._blocks: list[_Block] = [first] if first else []
        self._count = len(first)

    def extend(self, other: JsonLines | Iterable[str]) -> None:
        """Add the lines of ``other`` after these (its blocks, not copies of its lines)."""
        if not isinstance(other, JsonLines):
            other = JsonLines(other)
        self._blocks.extend(other._blocks)
        self._count += other._count

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[str]:
        for block in self._blocks:
            yield from block if isinstance(block, list) else str(block, "utf-8").split("\n")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, JsonLines | list):
            return len(self) == len(other) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like a list

    def __repr__(self) -> str:
        return f"JsonLines({list(self)!r})"

    def _utf8(self) -> bytes | memoryview:
        blocks = self._blocks
        if len(blocks) == 1 and not isinstance(blocks[0], list):
            return blocks[0]
        return b"\n".join(b if not isinstance(b, list) else "\n".join(b).encode()
                          for b in blocks)

    def encoded(self, size: int = 8192) -> Iterator[bytes | memoryview]:
        """The lines as UTF-8, every line ending in a newline: a text block as it is, a list
        ``size`` lines at a time (never one copy of the whole output)."""
        for block in self._blocks:
            if isinstance(block, list):
                for i in range(0, len(block), size):
                    yield ("\n".join(block[i:i + size]) + "\n").encode()
                continue
            yield block  # not + b"\n": a copy
            yield b"\n"

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        """Pickled as one UTF-8 text (out of band from protocol 5): one buffer, not a string
        a line."""
        data = self._utf8()
        buf = pickle.PickleBuffer(data) if protocol >= 5 else bytes(data)
        return (_from_utf8, (buf, self._count))


def _from_utf8(data: bytes | memoryview, count: int) -> JsonLines:
    out = JsonLines()
    if count:
        out._blocks.append(data if isinstance(data, bytes) else memoryview(data))
        out._count = count
    return out


__all__ = ["JsonLines"]

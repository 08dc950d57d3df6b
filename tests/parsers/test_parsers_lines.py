"""JSON lines held in blocks read, compare, pickle and write as the lines they hold."""

from __future__ import annotations

import pickle

from provision.parsers.lines import JsonLines

LINES = ['{"node": "gpu001", "value": 1.5}', '{"node": "gpü002", "detail": "Ωmega"}',
         '{"node": "gpu003", "value": 3}']


def _mixed() -> JsonLines:
    """Every kind of block: a list, UTF-8 text (pickled in band) and a view of it."""
    out = JsonLines(LINES[:1])
    out.extend(pickle.loads(pickle.dumps(JsonLines(LINES[1:2]), protocol=5)))
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(JsonLines(LINES[2:]), protocol=5, buffer_callback=buffers.append)
    out.extend(pickle.loads(data, buffers=[memoryview(b.raw().tobytes()) for b in buffers]))
    return out


def test_every_kind_of_block_gives_its_lines_in_order() -> None:
    got = _mixed()
    assert len(got) == 3 and list(got) == LINES and got == LINES and got == JsonLines(LINES)
    assert got != LINES[:2] and got != JsonLines(reversed(LINES))
    assert b"".join(got.encoded()) == ("\n".join(LINES) + "\n").encode()
    assert b"".join(JsonLines().encoded()) == b"" and JsonLines() == [] and not len(JsonLines())


def test_pickled_as_one_out_of_band_buffer() -> None:
    """Protocol 5 hands the text over as one buffer (what forked pieces write as it is);
    the lines come back from a view of it, non-ASCII ones too."""
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(_mixed(), protocol=5, buffer_callback=buffers.append)
    assert len(buffers) == 1 and len(data) < 200  # the text is not in the pickle
    with buffers[0].raw() as raw:
        assert raw.tobytes() == "\n".join(LINES).encode()
        view = memoryview(raw.tobytes()).toreadonly()
    back = pickle.loads(data, buffers=[view])
    assert back == LINES and b"".join(back.encoded()) == ("\n".join(LINES) + "\n").encode()
    empty = pickle.loads(pickle.dumps(JsonLines(), protocol=5))
    assert empty == [] and b"".join(empty.encoded()) == b""

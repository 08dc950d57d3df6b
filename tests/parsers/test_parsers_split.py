"""A file holding several tools' outputs, or several runs of one tool, is read whole."""

from __future__ import annotations

import pytest
from parsers_support import fixture_text, one, pick

from provision import parsers
from provision.errors import InputError
from provision.parsers import nccl_tests


def _cat(*names: str) -> str:
    return "\n".join(fixture_text(n).rstrip("\n") for n in names) + "\n"


def _parts(text: str) -> list[tuple[str, str, int]]:
    return [(p.tool, p.where, p.runs)
            for p in parsers.ingest_parts("auto", text, node="n1", source_name="x")]


def test_xid_after_gpu_burn_is_not_dropped() -> None:
    text = _cat("gpu-burn/issue8-azure-k80-10s-no-final-summary.txt",
                "dmesg-xid/stas-xid63-row-remapper-line.txt")
    assert [t for t, _, _ in _parts(text)] == ["gpu-burn", "dmesg-xid"]
    recs = parsers.ingest_text("auto", text, node="n1")
    xid = one(recs, "xid_events")
    assert xid.value == 1 and "Xid 63" in (xid.detail or "") and xid.max == 0
    assert pick(recs, "gpu_burn_gflops") or pick(recs, "tool_ran_ok")


def test_xid_line_above_nvidia_smi_q_keeps_both() -> None:
    text = _cat("dmesg-xid/stas-xid63-row-remapper-line.txt",
                "nvidia-smi-q/gpud-a10-535.129.03-remap-pending.txt")
    got = _parts(text)
    assert got[0] == ("dmesg-xid", "1", 1) and got[1][0] == "nvidia-smi-q"
    recs = parsers.ingest_text("auto", text, node="n1")
    assert one(recs, "remapped_rows_pending").value == 1
    assert one(recs, "xid_events").value == 1


def test_iso_kernel_log_after_nvidia_smi_q_goes_to_the_kernel_block() -> None:
    q = fixture_text("nvidia-smi-q/gpud-a10-535.129.03-remap-pending.txt").rstrip("\n")
    text = _cat("nvidia-smi-q/gpud-a10-535.129.03-remap-pending.txt",
                "dmesg-xid/gpud-dmesg-iso-xid48-63-94.txt")
    got = _parts(text)
    n = q.count("\n") + 1
    assert got == [("nvidia-smi-q", f"1-{n}", 1), ("dmesg-xid", f"{n + 1}-{text.count(chr(10))}", 1)]


def test_ibstat_then_nccl_tests() -> None:
    text = _cat("ibstat/gpud-h100-some-ports-down-0.txt",
                "nccl-tests/oci-bm-gpu4.8-a100-2node-16gpu-10G-ubuntu.txt")
    assert [t for t, _, _ in _parts(text)] == ["ibstat", "nccl-tests"]
    recs = parsers.ingest_text("auto", text, node="n1")
    assert pick(recs, "nic_port_up", value=0.0)
    assert one(recs, "nccl_busbw").value == 191.76


def test_every_tool_of_a_node_log_in_order() -> None:
    names = ["ibstat/gpud-a100-hdr-all-active.txt",
             "ibv_devinfo/heioy-cx3-2hca-dualport-port2-down.txt",
             "nvidia-smi-topo/xuesong-4x-a10-all-sys-2nics.txt",
             "nvbandwidth/readme-8gpu-h2d-ce-row.txt",
             "dcgmi-diag/ramble-dcgm3.3.9-8x-h200-r3-all-pass-eud-skip.txt",
             "nvidia-smi-nvlink/gpud-8x-a100-sxm4-80gb-nvlink-status.txt",
             "nvidia-smi-query-gpu/exporter-l40s-595.80-all-fields-idle.txt",
             "ibstatus/gpud-a100-hdr-8port-all-active.txt",
             "perftest/dgxspark-cx7-roce-write-bw-run-infinitely-rail1.txt",
             "gpu-burn/issue8-azure-k80-10s-no-final-summary.txt",
             "nvidia-smi-q/gpud-a10-535.129.03-remap-pending.txt"]
    text = _cat(*names)
    got = _parts(text)
    assert [t for t, _, _ in got] == [n.split("/")[0] for n in names]
    # every line is accounted for, in order, without overlaps
    firsts = [int(w.split("-")[0].split(",")[0]) for _, w, _ in got]
    assert firsts == sorted(firsts) and firsts[0] == 1
    alone = sum(len(parsers.ingest_text("auto", fixture_text(n), node="n1")) for n in names)
    assert len(parsers.ingest_text("auto", text, node="n1")) == alone


def test_concatenated_nccl_runs_are_separate_runs() -> None:
    names = ["nccl-tests/oci-bm-gpu4.8-a100-1node-8gpu-10G.txt",
             "nccl-tests/gcm-a100-sxm4-80gb-1node-8gpu-nccl2.16.2-hostname-placeholder.txt",
             "nccl-tests/cscs-gh200-2node-8gpu-v2.17.1-no-ofi-plugin-slow.txt"]
    text = _cat(*names)
    runs = nccl_tests.parse_runs(text, source_name="x")
    assert [r.node for r in runs] == ["inst-lscuv-ao-ub24", "{hostname}", "nid005471"]
    assert [len(r.devices) for r in runs] == [8, 8, 8]
    assert runs[1].first_line > runs[0].last_line and runs[2].first_line > runs[1].last_line
    recs = parsers.ingest_text("auto", text)
    assert sorted(r.value for r in pick(recs, "nccl_busbw")) == [5.43, 231.72, 232.20]
    assert not pick(recs, "tool_ran_ok")  # no false "same rank" failure across runs
    assert [p.runs for p in parsers.ingest_parts("nccl-tests", text, source_name="x")] == [3]


def test_duplicated_headers_of_one_run_stay_one_run() -> None:
    runs = nccl_tests.parse_runs(fixture_text(
        "nccl-tests/nccltests107-non-mpi-build-duplicated-headers-truncated.txt"), source_name="x")
    assert len(runs) == 1 and "same rank" in runs[0].errors[0]


def test_text_of_no_tool_is_refused_naming_line_1() -> None:
    with pytest.raises(InputError, match=r"x:1: cannot tell which tool"):
        parsers.ingest_parts("auto", "hello\nworld\n", source_name="x")


def test_every_kernel_word_holds_a_prefilter_word() -> None:
    # the kernel-log check first looks for the shorter words; a word without one of them
    # would never be looked for
    from provision.parsers.split import _KERNEL_PREFILTER, _KERNEL_WORDS

    assert all(any(p in w for p in _KERNEL_PREFILTER) for w in _KERNEL_WORDS)


def test_a_large_file_is_scanned_in_pieces_with_the_same_result(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # several tools' real outputs, a Xid line only in the last part: cut into 3 pieces
    from provision import forked
    from provision.parsers.split import scan, start_offsets

    text = _cat("nccl-tests/oci-bm-gpu4.8-a100-1node-8gpu-10G.txt",
                "ibstat/gpud-h100-some-ports-down-0.txt",
                "nccl-tests/oci-bm-gpu4.8-a100-1node-8gpu-10G.txt",
                "gpu-burn/issue8-azure-k80-10s-no-final-summary.txt") * 20
    tail = fixture_text("dmesg-xid/stas-xid63-row-remapper-line.txt")
    alone = {k: parsers.ingest_parts("auto", k, node="n1") for k in (text, text + tail)}
    monkeypatch.setattr(forked, "PARALLEL_BYTES", 1000)
    monkeypatch.setattr(forked, "workers", lambda: 3)
    pieces, real = [], forked.map_forked
    monkeypatch.setattr(forked, "map_forked", lambda w, p: pieces.append(len(p)) or real(w, p))
    for whole, kernel in ((text, False), (text + tail, True)):
        offsets, has_kernel = scan(whole)
        assert offsets == start_offsets(whole) and len({t for _, t in offsets}) == 3
        assert has_kernel is kernel
        assert parsers.ingest_parts("auto", whole, node="n1") == alone[whole]
    assert pieces and set(pieces) == {3}                      # it was read in pieces


def test_a_block_that_does_not_read_keeps_its_own_tools_error() -> None:
    """An ibstat block without --node, followed by an nccl-tests run whose library warnings
    (``all_reduce_perf: ... no version info``) end up in the ibstat block: the error is
    ibstat's missing host, not nccl-tests' "no header" for a block that is not nccl-tests."""
    text = _cat("ibstat/gpud-h100-some-ports-down-0.txt",
                "nccl-tests/cscs-gh200-2node-8gpu-v2.17.1-no-ofi-plugin-slow.txt")
    with pytest.raises(InputError, match="ibstat output does not name its host"):
        parsers.ingest_parts("auto", text, source_name="x")
    assert [t for t, _, _ in _parts(text)] == ["ibstat", "nccl-tests"]


def test_detection_of_a_mostly_blank_block_does_not_hang() -> None:
    """The kernel-log block of a large log is its Xid lines with every other line blanked
    (line numbers stay true): 200,000 blank lines. Without --node it does not read, and
    the tools' markers are asked what it is. A marker that let ``^\\s*`` run across lines
    tried every blank line from every blank line: hours for this block (93 s for 58,000
    lines). The alarm turns such a hang into a failure; the detection takes milliseconds."""
    import signal

    xid = fixture_text("dmesg-xid/stas-xid63-row-remapper-line.txt").strip("\n")
    block = "\n" * 200_000 + xid + "\n"
    previous = signal.signal(signal.SIGALRM, lambda *a: pytest.fail("detection hung"))
    signal.alarm(60)
    try:
        assert parsers.detect_tool(block) == "dmesg-xid"
        assert all(p.detect("\n" * 200_000 + "x\n") is False for p in parsers.PARSERS)
        # an nvidia-smi -q field name first: its indentation test ran across lines too
        assert parsers.get("nvidia-smi-q").detect("Temperature\n" + "\n" * 200_000 + "x\n") \
            is False
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)

"""nccl-tests: every real sample, with the numbers it prints."""

from __future__ import annotations

import pytest
from parsers_support import fixture_text, one, pick

from provision.errors import InputError
from provision.parsers import nccl_tests

D = "nccl-tests/"


def parse(name: str, node: str | None = None) -> nccl_tests.NcclResult:
    return nccl_tests.parse(fixture_text(D + name), node=node, source_name=name)


def recs(name: str, node: str | None = None):
    return nccl_tests.measurements(parse(name, node))


def test_cscs_gh200_two_nodes_no_plugin() -> None:
    r = parse("cscs-gh200-2node-8gpu-v2.17.1-no-ofi-plugin-slow.txt")
    assert r.node == "nid005471" and r.hosts == ("nid005471", "nid005487")
    assert len(r.devices) == 8 and r.devices[4].host == "nid005487"
    assert r.devices[0].model == "NVIDIA GH200 120GB" and r.devices[0].bus == "0009:01:00"
    assert r.test == "all_reduce_perf" and len(r.rows) == 25
    assert r.rows[0].size == 8 and r.rows[0].oop_time_us == 85.47
    big = r.largest
    assert big is not None and big.size == 134217728
    assert (big.oop_algbw, big.oop_busbw, big.ip_busbw) == (3.10, 5.43, 5.41)
    assert r.avg_busbw == 1.58767 and r.out_of_bounds == 0 and r.wrong_total == 0
    m = recs("cscs-gh200-2node-8gpu-v2.17.1-no-ofi-plugin-slow.txt")
    assert one(m, "nccl_busbw").value == 5.43 and one(m, "nccl_busbw").peer == "nid005487"
    assert one(m, "nccl_avg_busbw").value == 1.58767
    assert one(m, "nccl_busbw_by_size", detail_has="33554432 B in-place").value == 3.40
    assert not pick(m, "tool_ran_ok")


def test_gcm_one_node_placeholder_host() -> None:
    r = parse("gcm-a100-sxm4-80gb-1node-8gpu-nccl2.16.2-hostname-placeholder.txt")
    assert r.node == "{hostname}" and r.nccl_version == "2.16.2+cuda11.6"
    assert r.rows[0].size == 33554432 and len(r.rows) == 6
    m = nccl_tests.measurements(r)
    assert one(m, "nccl_busbw").value == 231.72 and one(m, "nccl_algbw").value == 132.41
    assert one(m, "nccl_avg_busbw").value == 210.99
    assert one(m, "nccl_wrong").value == 0 and one(m, "nccl_wrong").max == 0
    assert one(m, "nccl_busbw").peer is None


def test_gcm_two_nodes() -> None:
    r = parse("gcm-a100-sxm4-80gb-2node-16gpu-nccl2.12.12-hostname-placeholder.txt")
    assert r.hosts == ("{host1}", "{host2}") and len(r.devices) == 16
    assert r.largest is not None and r.largest.oop_time_us == 11013
    m = nccl_tests.measurements(r)
    assert one(m, "nccl_busbw").value == 182.80 and one(m, "nccl_busbw").peer == "{host2}"
    assert one(m, "nccl_avg_busbw").value == 150.209


def test_mpirun_not_enough_slots_is_a_failure_record_and_needs_node() -> None:
    name = "gcm-mpirun-not-enough-slots-no-table.txt"
    with pytest.raises(InputError, match="does not name its host"):
        parse(name)
    r = parse(name, node="gpu001")
    assert r.rows == () and r.test == "all_reduce_perf"
    m = nccl_tests.measurements(r)
    fail = one(m, "tool_ran_ok")
    assert fail.value == 0 and fail.min == 1 and fail.node == "gpu001"
    assert "not enough slots" in (fail.detail or "") and "16" in (fail.detail or "")


def test_hypercube_invalid_device_ordinal() -> None:
    r = parse("issue289-rtx5090-hypercube-g8-invalid-device-ordinal.txt")
    assert r.node == "localhost" and r.rows == () and len(r.errors) == 2
    assert "common.cu:986 'invalid device ordinal'" in r.errors[0]
    assert one(nccl_tests.measurements(r), "tool_ran_ok").value == 0


def test_docker_shm_unhandled_system_error_names_host() -> None:
    r = parse("nccl473-4x-rtx2080ti-2021-unhandled-system-error-docker-shm.txt")
    assert r.node == "fastmoe" and len(r.devices) == 4 and r.devices[3].bus == "0xaf"
    assert r.devices[0].model == "GeForce RTX 2080 Ti"
    assert "common.cu:777" in r.errors[0]


def test_non_mpi_build_duplicate_rank_zero() -> None:
    r = parse("nccltests107-non-mpi-build-duplicated-headers-truncated.txt")
    assert [d.rank for d in r.devices] == [0, 0]
    assert r.hosts == ("ip-172-31-20-228", "ip-172-31-22-230") and r.rows == ()
    fail = one(nccl_tests.measurements(r), "tool_ran_ok")
    # the failure is the run's, not a link's: the other host is named, not a peer
    assert "same rank" in (fail.detail or "") and fail.peer is None
    assert "(with ip-172-31-22-230)" in (fail.detail or "")


def test_connection_closed_fragment() -> None:
    r = parse("nccltests15-2node-nccl-warn-connection-closed-fragment.txt")
    assert r.node == "server1" and len(r.errors) == 2
    assert "Connection closed by remote peer" in r.errors[0]


def test_sendrecv_inplace_na_truncated() -> None:
    r = parse("nccltests214-sendrecv-2node-a40-inplace-NA-truncated.txt")
    assert r.hosts == ("gpu23", "gpu24") and len(r.rows) == 5
    assert all(x.ip_wrong is None and x.oop_wrong == 0 for x in r.rows)
    assert r.avg_busbw is None and r.largest is not None and r.largest.size == 4096
    m = nccl_tests.measurements(r)
    assert one(m, "nccl_busbw").value == 0.13 and one(m, "nccl_busbw").peer == "gpu24"
    assert one(m, "nccl_wrong").value == 0 and not pick(m, "nccl_avg_busbw")


@pytest.mark.parametrize(("name", "host", "busbw", "algbw", "avg", "peer"), [
    ("oci-bm-gpu4.8-a100-1node-8gpu-10G.txt", "inst-lscuv-ao-ub24", 232.20, 132.69, 232.167,
     None),
    ("oci-bm-gpu4.8-a100-2node-16gpu-10G-docker-older.txt", "inst-xxxxx-comp", 222.88, 118.87,
     220.921, "inst-yyyyy-comp"),
    ("oci-bm-gpu4.8-a100-2node-16gpu-10G-ubuntu.txt", "inst-li3ob-ao-ub24", 191.76, 102.27,
     191.752, "inst-wyzi7-ao-ub24"),
])
def test_oci_single_size(name: str, host: str, busbw: float, algbw: float, avg: float,
                         peer: str | None) -> None:
    r = parse(name)
    assert r.node == host and len(r.rows) == 1 and r.rows[0].size == 10737418240
    m = nccl_tests.measurements(r)
    assert one(m, "nccl_busbw").value == busbw and one(m, "nccl_algbw").value == algbw
    assert one(m, "nccl_avg_busbw").value == avg and one(m, "nccl_busbw").peer == peer


def test_wrong_results_become_a_failing_record() -> None:
    text = fixture_text(D + "oci-bm-gpu4.8-a100-1node-8gpu-10G.txt").replace(
        "132.65  232.13      0", "132.65  232.13      3")
    m = nccl_tests.measurements(nccl_tests.parse(text, source_name="x"))
    wrong = one(m, "nccl_wrong")
    assert wrong.value == 3 and wrong.max == 0


def test_header_only_is_refused() -> None:
    text = "\n".join(fixture_text(D + "oci-bm-gpu4.8-a100-1node-8gpu-10G.txt").splitlines()[:16])
    with pytest.raises(InputError, match=r"x:\d+: cannot parse as nccl-tests.*truncated"):
        nccl_tests.parse(text, source_name="x")


def test_malformed_middle_row_is_kept_out_and_named() -> None:
    lines = fixture_text(D + "gcm-a100-sxm4-80gb-1node-8gpu-nccl2.16.2-hostname-placeholder.txt"
                         ).splitlines()
    lines[16] = lines[16][:40]
    r = nccl_tests.parse("\n".join(lines), source_name="x")
    assert r.skipped == (17,) and len(r.rows) == 5 and 17 not in [x.line for x in r.rows]


def test_row_cut_at_end_keeps_complete_rows() -> None:
    text = fixture_text(D + "gcm-a100-sxm4-80gb-1node-8gpu-nccl2.16.2-hostname-placeholder.txt")
    cut = text[:text.index("1073741824     268435456") + 40]
    r = nccl_tests.parse(cut, source_name="x")
    assert len(r.rows) == 5 and r.largest is not None and r.largest.size == 536870912

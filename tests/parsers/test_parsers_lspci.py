"""lspci -vvv: PCIe port types and ACS control, on real outputs people published
(tests/parsers/fixtures/lspci/SOURCES.md)."""

from __future__ import annotations

import pytest
from parsers_support import fixture_text, pick

from provision import parsers
from provision.errors import InputError
from provision.parsers import lspci

N1SDP = "lspci/lore-n1sdp-20191211-pex8749-dsp-acs-redirect-on-vvxxx-hexdump.txt"
MATISSE = "lspci/lore-kvm-20230302-x570-matisse-switch-dsp-acs-on-plus-access-denied.txt"
V100 = "lspci/pciee-4028gr-tvrt-v100-sxm2-pex9765-acs-off-lspci-path-addresses.txt"
DELL = "lspci/sandmark-lspci-md-dell-haswell-e-nonroot-access-denied.txt"
H100 = "lspci/fastfetch1658-h100-supermicro-pex890xx-nonroot-vv-access-denied-fragment.txt"


def _parse(rel: str) -> lspci.LspciResult:
    return lspci.parse(fixture_text(rel), node="n1", source_name=rel)


def test_switch_downstream_ports_with_acs_redirect_on() -> None:
    """PEX 8749 downstream ports as the kernel left them: ReqRedir+ CmpltRedir+ (with -xxx:
    the hex dump under each block is skipped, not read as devices)."""
    r = _parse(N1SDP)
    assert [f.address for f in r.functions] == ["0000:01:00.0", "0000:02:08.0", "0000:02:10.0"]
    up = r.function("01:00.0")
    assert up is not None and up.port_type == "Upstream Port" and up.acs_control is None
    for addr in ("0000:02:08.0", "0000:02:10.0"):
        f = r.function(addr)
        assert f is not None and f.bridge and f.port_type == "Downstream Port"
        assert f.acs_control == ("SrcValid", "ReqRedir", "CmpltRedir", "UpstreamFwd")
        assert f.acs_capability == ("SrcValid", "TransBlk", "ReqRedir", "CmpltRedir",
                                    "UpstreamFwd", "EgressCtrl", "DirectTrans")
        assert f.acs_redirect == ("ReqRedir", "CmpltRedir")
    recs = parsers.get("lspci").measurements(r)
    assert [(x.value, x.max) for x in pick(recs, "pcie_acs_redirect")] == [(1, 0), (1, 0)]
    assert "0000:02:08.0 Downstream Port (PLX Technology, Inc. Device 8749 (rev ca)" in (
        recs[0].detail or "")
    assert "ReqRedir+ CmpltRedir+" in (recs[0].detail or "")


def test_acs_off_behind_a_gpu_servers_switches_read_through_bridge_paths() -> None:
    """lspci -PP names devices by their path through the bridges: the last one is the device."""
    r = _parse(V100)
    assert [f.address for f in r.functions] == [
        "0000:00:02.0", "0000:0b:00.0", "0000:0c:04.0", "0000:0c:08.0", "0000:0c:0c.0",
        "0000:0d:00.0", "0000:0e:00.0"]
    root = r.function("0000:00:02.0")
    assert root is not None and root.port_type == "Root Port" and root.acs_control == ()
    gpu = r.function("0000:0d:00.0")
    assert gpu is not None and not gpu.bridge and gpu.port_type == "Endpoint"
    assert "Tesla V100 SXM2" in gpu.description
    recs = pick(parsers.get("lspci").measurements(r), "pcie_acs_redirect")
    assert len(recs) == 4 and all(x.value == 0 for x in recs)      # root + 3 downstream ports
    assert all("ACSCtl all off" in (x.detail or "") for x in recs)


def test_not_root_is_said_not_passed() -> None:
    for rel, denied in ((DELL, 31), (H100, 2)):
        r = _parse(rel)
        assert sum(f.access_denied for f in r.functions) == denied
        assert all(f.acs_control is None for f in r.functions)
        recs = parsers.get("lspci").measurements(r)
        assert not pick(recs, "pcie_acs_redirect")
        (bad,) = pick(recs, "tool_ran_ok")
        assert bad.value == 0 and "run as root" in (bad.detail or "")


def test_one_bridge_denied_one_read() -> None:
    r = _parse(MATISSE)
    denied, read = r.functions
    assert denied.address == "0000:03:05.0" and denied.access_denied
    assert read.address == "0000:03:02.0" and read.acs_redirect == ("ReqRedir", "CmpltRedir")


def test_auto_detects_lspci_and_refuses_other_text() -> None:
    assert parsers.detect_tool(fixture_text(V100)) == "lspci"
    with pytest.raises(InputError, match=r"x:1: cannot parse as lspci output"):
        lspci.parse("PCI bridge without an address\n", node="n", source_name="x")
    with pytest.raises(InputError, match="an indented line before the first device"):
        lspci.parse("\tCapabilities: [40] Express\n", node="n", source_name="x")

"""ibstat, ibstatus and ibv_devinfo on every real sample."""

from __future__ import annotations

import pytest
from parsers_support import fixture_text, one, pick

from provision.errors import InputError
from provision.parsers import ibstat, ibstatus, ibv_devinfo


def ib(name: str, node: str | None = "n1") -> ibstat.IbDevicesResult:
    return ibstat.parse(fixture_text("ibstat/" + name), node=node, source_name=name)


def test_ibstat_needs_a_node_name() -> None:
    with pytest.raises(InputError, match="does not name its host"):
        ib("gpud-a100-hdr-all-active.txt", node=None)


def test_ibpanic_alone_is_a_failure_record() -> None:
    r = ib("azhpcdiag59-ibpanic-accelerated-networking-an0.txt")
    assert r.cas == () and "mlx5_an0" in r.errors[0]
    fail = one(ibstat.measurements(r), "tool_ran_ok")
    assert fail.value == 0 and (fail.detail or "").startswith("mlx5_an0:")


def test_ibpanic_after_eight_active_hdr_ports() -> None:
    r = ib("gpud-a100-hdr-8port-ibpanic-mlx5_8.txt")
    assert len(r.cas) == 8 and all(c.ca_type == "MT4124" for c in r.cas)
    assert r.cas[0].firmware == "20.41.1000" and r.port("mlx5_0").lid == 13247  # type: ignore[union-attr]
    m = ibstat.measurements(r)
    assert len(pick(m, "nic_port_up", value=1.0)) == 8
    assert {x.value for x in pick(m, "nic_port_rate")} == {200.0}
    assert "mlx5_8" in (one(m, "tool_ran_ok").detail or "")
    assert one(m, "nic_count").value == 8


def test_a100_all_active_nine_ports() -> None:
    m = ibstat.measurements(ib("gpud-a100-hdr-all-active.txt"))
    assert len(pick(m, "nic_port_up", value=1.0)) == 9
    assert [x.value for x in pick(m, "nic_port_rate")] == [200.0] * 9


def test_h100_cx7_plus_cx6dx() -> None:
    # SOURCES.md calls the link layers mixed; the file itself says Ethernet on all 12 ports
    r = ib("gpud-h100-ndr-ib-plus-eth-all-active.txt")
    assert {p.link_layer for c in r.cas for p in c.ports} == {"Ethernet"}
    types = [c.ca_type for c in r.cas]
    assert types.count("MT4129") == 8 and types.count("MT4125") == 4
    m = ibstat.measurements(r)
    rates = sorted(x.value for x in pick(m, "nic_port_rate"))
    assert rates == [100.0] * 4 + [400.0] * 8
    assert not pick(m, "nic_port_up", value=0.0)


def test_space_indented_same_as_tabs() -> None:
    r = ib("gpud-h100-ndr-space-indented.txt")
    assert [c.name for c in r.cas][-1] == "mlx5_bond_0" and r.cas[-1].ca_type == "MT41692"
    bond = r.port("mlx5_bond_0")
    assert bond is not None and bond.rate_gbps == 200 and bond.link_layer == "Ethernet"
    assert r.port("mlx5_9") is not None and r.port("mlx5_9").lid == 2015  # type: ignore[union-attr]


@pytest.mark.parametrize(("name", "down", "up"), [
    ("gpud-h100-roce-some-ports-down-1.txt", {"mlx5_11", "mlx5_5"}, 10),
    ("gpud-h100-some-ports-down-0.txt", None, None),
])
def test_ports_down(name: str, down: set[str] | None, up: int | None) -> None:
    r = ib(name)
    m = ibstat.measurements(r)
    bad = pick(m, "nic_port_up", value=0.0)
    assert all(x.min == 1 for x in bad)
    if down is not None:
        assert {(x.detail or "").split()[0] for x in bad} == down
        assert len(pick(m, "nic_port_up", value=1.0)) == up
    else:  # SOURCES: 3 ports State Down / Physical state Disabled / Rate 40
        assert len(bad) == 3
        assert all("Down/Disabled" in (x.detail or "") for x in bad)
        downs = [p for c in r.cas for p in c.ports if not p.up]
        assert {p.rate_gbps for p in downs} == {40.0}
    # a down port's placeholder rate is not recorded as a rate
    assert 40.0 not in {x.value for x in pick(m, "nic_port_rate")}


def test_ibstat_short_form_without_ports() -> None:
    r = ib("heioy-cx3-ibstat-short-s-no-ports.txt")
    assert [c.name for c in r.cas] == ["mlx4_0", "mlx4_1"]
    assert all(c.ports == () and c.num_ports == 2 for c in r.cas)
    assert one(ibstat.measurements(r), "nic_count").value == 2


def test_cx3_dual_port_fdr() -> None:
    r = ib("heioy-cx3-mt4099-fdr56-2ca-dualport.txt")
    assert [len(c.ports) for c in r.cas] == [2, 2]
    assert r.port("mlx4_1", 2).lid == 4  # type: ignore[union-attr]
    assert [x.value for x in pick(ibstat.measurements(r), "nic_port_rate")] == [56.0] * 4


def test_cx6dx_roce_100g() -> None:
    m = ibstat.measurements(ib("l2fwdnv6-2x-cx6dx-mt4125-roce-100g.txt"))
    assert [x.value for x in pick(m, "nic_port_rate")] == [100.0, 100.0]
    assert all("Ethernet" in (x.detail or "") for x in pick(m, "nic_port_up"))


def test_truncated_inside_a_down_port() -> None:
    r = ib("mooncake1999-cx7-roce200-then-cx6dx-down-truncated.txt")
    p = r.port("mlx5_10")
    assert p is not None and p.state == "Down" and p.rate_gbps is None
    m = ibstat.measurements(r)
    assert one(m, "nic_port_up", detail_has="mlx5_10").value == 0
    assert [x.value for x in pick(m, "nic_port_rate")] == [200.0, 200.0]


def test_hdr_one_port_down_rate_10() -> None:
    r = ib("nccltests128-cx6-hdr-one-port-down-rate10-truncated.txt")
    assert r.port("mlx5_1").rate_gbps == 10 and r.port("mlx5_1").lid == 65535  # type: ignore
    m = ibstat.measurements(r)
    assert one(m, "nic_port_up", detail_has="mlx5_1 ").value == 0
    assert one(m, "nic_port_up", detail_has="mlx5_2").value == 1
    assert [x.value for x in pick(m, "nic_port_rate")] == [200.0]


def test_ibstatus_eight_hdr_and_one_ethernet() -> None:
    name = "gpud-a100-hdr-8port-all-active.txt"
    r = ibstatus.parse(fixture_text("ibstatus/" + name), node="n1", source_name=name)
    assert len(r.cas) == 9
    p = r.port("mlx5_8")
    assert p is not None and p.rate_gbps == 40 and p.link_layer == "Ethernet" and p.up
    m = ibstatus.measurements(r)
    assert len(pick(m, "nic_port_up", value=1.0)) == 9
    assert sorted(x.value for x in pick(m, "nic_port_rate")) == [40.0] + [200.0] * 8


def test_ibv_devinfo_renamed_devices_truncated() -> None:
    name = "azhpcimages44-renamed-rdmaP-ibP-devices-truncated.txt"
    r = ibv_devinfo.parse(fixture_text("ibv_devinfo/" + name), node="n1", source_name=name)
    assert [c.name for c in r.cas] == ["rdmaP23800p0s2", "ibP57247p0s2"]
    assert r.cas[0].firmware == "14.25.8102" and r.cas[1].ca_type == "4120"
    p = r.port("rdmaP23800p0s2")
    assert p is not None and p.up and p.active_mtu == 1024 and p.link_layer == "Ethernet"
    m = ibv_devinfo.measurements(r)
    assert one(m, "nic_port_mtu").value == 1024 and one(m, "nic_port_up").value == 1


def test_ibv_devinfo_port2_down() -> None:
    name = "heioy-cx3-2hca-dualport-port2-down.txt"
    r = ibv_devinfo.parse(fixture_text("ibv_devinfo/" + name), node="n1", source_name=name)
    assert [c.name for c in r.cas] == ["mlx4_1", "mlx4_0"] and r.cas[0].board_id == "MT_1090120019"
    assert r.port("mlx4_0", 1).lid == 32 and r.port("mlx4_1", 2).state == "Down"  # type: ignore
    m = ibv_devinfo.measurements(r)
    assert len(pick(m, "nic_port_up", value=0.0)) == 2
    assert {x.value for x in pick(m, "nic_port_mtu")} == {4096.0}


def test_ibv_devinfo_verbose_rate() -> None:
    text = ("hca_id:\tmlx5_0\n\tfw_ver:\t28.39.1002\n\t\tport:\t1\n"
            "\t\t\tstate:\t\tPORT_ACTIVE (4)\n"
            "\t\t\tactive_width:\t\t4X (2)\n\t\t\tactive_speed:\t\t50.0 Gbps (64)\n"
            "\t\t\tphys_state:\t\tLINK_UP (5)\n")
    p = ibv_devinfo.parse(text, node="n", source_name="x").port("mlx5_0")
    assert p is not None and p.rate_gbps == 200.0 and p.physical_state == "LINK_UP"


@pytest.mark.parametrize("mod", [ibstat, ibstatus, ibv_devinfo])
def test_garbage_names_the_line(mod) -> None:
    with pytest.raises(InputError, match=r"g.txt:1: cannot parse as"):
        mod.parse("this is not\nwhat you think\n", node="n", source_name="g.txt")

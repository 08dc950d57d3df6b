"""The examples and presets are valid and true to the reference architecture."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.expectations import plan_site
from provision.spec import load_site, load_site_text
from provision.spec.presets import SIZES

EXAMPLES = Path(__file__).resolve().parents[2] / "site-specs"

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


def test_all_required_examples_exist() -> None:
    names = {p.name for p in EXAMPLE_FILES}
    assert {"small.yaml", "medium.yaml", "large.yaml", "ovx-l40s.yaml", "roce.yaml",
            "lab.yaml"} <= names


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.stem for p in EXAMPLE_FILES])
def test_example_validates(path) -> None:  # type: ignore[no-untyped-def]
    site = load_site(path)
    assert site.nodes


def test_small_is_the_ra_small_size() -> None:
    site = load_site(EXAMPLES / "small.yaml")
    gpus = [n for n in site.nodes if n.profile.gpu]
    assert len(gpus) == SIZES["small"]["compute"] == 4
    assert sum(n.profile.gpu.count for n in gpus if n.profile.gpu) == 32
    p = gpus[0].profile
    assert p.gpu is not None and p.gpu.model == "H100 NVL"
    assert p.gpu.nvlink_pairs == ((0, 1), (2, 3), (4, 5), (6, 7))
    assert p.compute_ports == 8 and p.fabric_bandwidth_gbps == 1600
    assert [n.count for n in p.nics] == [4, 1]  # 4+1 ConnectX-7 NDR200
    assert site.node("gpu003").serial == "J900ABC3"
    assert site.node("gpu002").management_ip == "10.10.0.102"
    assert site.node("gpu004").fabric_addresses[7].address == "10.20.7.104"


def test_large_spans_two_racks_and_skips_excepted_address() -> None:
    site = load_site(EXAMPLES / "large.yaml")
    racks = {n.rack for n in site.nodes if n.profile.gpu}
    assert racks == {"r01", "r02"}
    assert site.node("gpu008").rack == "r01" and site.node("gpu009").rack == "r02"
    ips = [site.node(f"gpu{i:03d}").management_ip for i in range(1, 8)]
    assert "10.40.0.105" not in ips
    assert ips[:5] == ["10.40.0.101", "10.40.0.102", "10.40.0.103", "10.40.0.104",
                       "10.40.0.106"]
    assert site.node("gpu016").management_ip == "10.40.1.16"  # explicit wins
    assert site.stack.sources.mode == "mirror"


def test_ovx_has_no_nvlink_and_roce() -> None:
    site = load_site(EXAMPLES / "ovx-l40s.yaml")
    node = site.node("ovx01")
    assert node.profile.gpu is not None and node.profile.gpu.model == "L40S"
    assert node.profile.gpu.nvlink_pairs == ()
    assert site.fabric.type == "roce" and site.fabric.roce is not None
    assert site.fabric.roce.pfc_priority == 3
    plan = plan_site(site).for_node("ovx01")
    assert plan.threshold("nvlink_links_up") is None  # no NVLink: no NVLink threshold
    hbm = plan.threshold("hbm_bandwidth")
    assert hbm is not None and hbm.fraction == 0.75 and hbm.figure_value == 864
    assert hbm.limit == pytest.approx(648)


def test_every_threshold_is_a_fraction_of_a_sourced_figure() -> None:
    for path in EXAMPLE_FILES:
        site = load_site(path)
        for plan in plan_site(site).nodes:
            for t in plan.thresholds:
                assert t.source and t.source != "unspecified", (path, t.name)
                assert t.limit == pytest.approx(t.fraction * t.figure_value)
                assert t.figure in t.describe() and t.source in t.describe()


def test_spec_override_of_threshold_fraction() -> None:
    site = load_site(EXAMPLES / "medium.yaml")
    t = plan_site(site).for_node("gpu001").threshold("hbm_bandwidth")
    assert t is not None and t.fraction == 0.82 and t.limit == pytest.approx(0.82 * 3900)


def test_roce_example_extends_a_builtin_profile() -> None:
    site = load_site(EXAMPLES / "roce.yaml")
    p = site.node("rgpu01").profile
    assert p.name == "pod-h100-roce"
    assert len(p.nics) == 1 and p.nics[0].link_layer == "Ethernet"
    assert p.gpu is not None and p.gpu.model == "H100 NVL"  # inherited
    assert p.operating_mode == "maximum-performance"


def test_preset_only_spec_is_complete() -> None:
    site = load_site_text("spec_version: 1\ncluster: {name: x, size: large}\n", "x.yaml")
    assert len([n for n in site.nodes if n.profile.gpu]) == 16
    assert site.stack.version_map["driver_branch"] == "580"


def test_h200_profile() -> None:
    text = ("spec_version: 1\ncluster: {name: h, size: small}\nnode_groups:\n"
            "  - {name: head, nodes: head01, roles: [controller], profile: sr650v3-head}\n"
            "  - {name: gpu, nodes: 'gpu[1-4]', roles: [compute], profile: sr675v3-h200nvl-ib,"
            " rack: r01, addresses: {fabric: 11}}\n")
    site = load_site_text(text, "h.yaml")
    t = plan_site(site).for_node("gpu1").threshold("hbm_bandwidth")
    assert t is not None and t.figure_value == 4800

"""The rail map: recorded from a real ibdev2netdev capture, used for fabric addresses."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from provision.cli.main import cli, main
from provision.errors import InputError
from provision.spec import rails
from provision.spec.loader import load_site_text

HERE = Path(__file__).resolve().parent
CAPTURE = HERE / "fixtures" / "imbue4-h100-ibdev2netdev.txt"
EXAMPLES = HERE.parents[1] / "site-specs"


def test_pci_address_from_predictable_names() -> None:
    assert rails.pci_from_netdev("ibp26s0") == "0000:1a:00.0"
    assert rails.pci_from_netdev("enp157s0f1np1") == "0000:9d:00.1"
    assert rails.pci_from_netdev("ib0") is None


def test_real_capture_shows_enumeration_order_is_not_rail_order() -> None:
    ports = rails.parse_ibdev2netdev(CAPTURE.read_text())
    assert len(ports) == 12
    mapped = rails.compute_rails(ports, link_layer="InfiniBand")
    assert [r.hca for r in mapped] == ["mlx5_0", "mlx5_3", "mlx5_4", "mlx5_5", "mlx5_6",
                                       "mlx5_9", "mlx5_10", "mlx5_11"]
    assert [f"mlx5_{i}" for i in range(8)] != [r.hca for r in mapped]
    assert mapped[0].pci == "0000:1a:00.0" and mapped[-1].pci == "0000:dc:00.0"
    storage = mapped[-1].pci
    assert len(rails.compute_rails(ports, exclude=(storage,), link_layer="InfiniBand")) == 7


def test_verbose_lines_carry_the_pci_address() -> None:
    line = ("0000:1a:00.0 mlx5_0 (MT4129 - MCX75310AAS-NEAT) NVIDIA ConnectX-7 fw 28.39.1002 "
            "port 1 (ACTIVE) ==> ibp26s0 (Up)")
    (port,) = rails.parse_ibdev2netdev(line)
    assert (port.pci, port.hca, port.port, port.netdev) == ("0000:1a:00.0", "mlx5_0", 1, "ibp26s0")


def test_bad_capture_names_the_line() -> None:
    with pytest.raises(InputError, match=r"cap:2: not an ibdev2netdev line"):
        rails.parse_ibdev2netdev("mlx5_0 port 1 ==> ibp26s0 (Up)\ngarbage here\n", "cap")
    with pytest.raises(InputError, match="record with `ibdev2netdev -v`"):
        rails.parse_ibdev2netdev("mlx5_0 port 1 ==> ib0 (Up)\n", "cap")


def _spec_with_map(rail_map: list[dict[str, str]]) -> str:
    text = (EXAMPLES / "small.yaml").read_text()
    doc = yaml.safe_load(text)
    doc.setdefault("profiles", {})["sr675v3-h100nvl-ib"] = {"rail_map": rail_map}
    return yaml.safe_dump(doc, sort_keys=False)


def test_recorded_map_names_every_fabric_address(tmp_path: Path) -> None:
    out = tmp_path / "map.yaml"
    result = CliRunner().invoke(cli, ["rails", "record", str(CAPTURE), "--spec",
                                      str(EXAMPLES / "small.yaml"), "--profile",
                                      "sr675v3-h100nvl-ib", "-o", str(out)])
    assert result.exit_code == 0, result.output
    rail_map = yaml.safe_load(out.read_text())["rail_map"]
    site = load_site_text(_spec_with_map(rail_map), "small.yaml", EXAMPLES)
    node = site.nodes[-1]
    assert [a.device for a in node.fabric_addresses] == [r["hca"] for r in rail_map]
    assert [a.pci for a in node.fabric_addresses] == [r["pci"] for r in rail_map]
    assert node.fabric_addresses[1].device == "mlx5_3"       # not mlx5_1 (an Ethernet port)


def test_record_refuses_a_count_that_does_not_fit_the_profile(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["rails", "record", str(CAPTURE), "--exclude", "0000:1a:00.0", "--spec",
              str(EXAMPLES / "small.yaml"), "--profile", "sr675v3-h100nvl-ib"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "7 compute ports after --exclude, but profile sr675v3-h100nvl-ib has 8" in err


def test_profile_rejects_a_map_of_the_wrong_size() -> None:
    with pytest.raises(InputError, match="maps 1 ports, but the profile has 8 compute ports"):
        load_site_text(_spec_with_map([{"pci": "0000:1a:00.0", "hca": "mlx5_0"}]),
                       "small.yaml", EXAMPLES)


def test_validate_and_render_warn_where_ports_are_taken_by_position(tmp_path: Path) -> None:
    """No map: one warning on stderr naming the profile (exit 0); a recorded map: none."""
    small = EXAMPLES / "small.yaml"
    plain = CliRunner().invoke(cli, ["validate", str(small)])
    assert plain.exit_code == 0, plain.output
    (warning,) = [ln for ln in plain.stderr.splitlines() if "warning" in ln]
    assert warning.startswith(f"{small}: warning: profile sr675v3-h100nvl-ib: no rail_map")
    assert "mlx5_0..mlx5_7" in warning and "forge rails record" in warning
    assert "warning" not in plain.stdout
    as_json = CliRunner().invoke(cli, ["validate", str(small), "--json"])
    assert yaml.safe_load(as_json.stdout)["warnings"] == [warning.split(": warning: ", 1)[1]]

    out = tmp_path / "map.yaml"
    CliRunner().invoke(cli, ["rails", "record", str(CAPTURE), "--spec", str(small),
                             "--profile", "sr675v3-h100nvl-ib", "-o", str(out)])
    mapped = tmp_path / "mapped.yaml"
    mapped.write_text(_spec_with_map(yaml.safe_load(out.read_text())["rail_map"]))
    for argv in (["validate", str(mapped)], ["render", str(mapped), "-o", str(tmp_path / "inv")]):
        done = CliRunner().invoke(cli, argv)
        assert done.exit_code == 0, done.output
        assert "rail_map" not in done.stderr

    rendered = CliRunner().invoke(cli, ["render", str(small), "-o", str(tmp_path / "inv2")])
    assert rendered.exit_code == 0 and "no rail_map" in rendered.stderr


def test_no_warning_without_a_fabric() -> None:
    done = CliRunner().invoke(cli, ["validate", str(EXAMPLES / "lab.yaml")])
    assert done.exit_code == 0 and "warning" not in done.stderr

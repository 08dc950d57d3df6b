"""Slurm GRES types from NVML names, checked against the names real nvidia-smi prints."""

from __future__ import annotations

import re

import pytest
from parsers.parsers_support import REAL

from provision.inventory.render import hw_vars
from provision.spec import gres
from provision.spec.profiles import (
    build_profile,
    builtin_profile_names,
    catalog,
    resolve_profile_dict,
)

#: the type each catalog model gets; the old rule (strip every non-alphanumeric)
#: gave h100nvl / h200nvl, which are not substrings of what slurmd detects
EXPECTED = {"H100 NVL": "h100_nvl", "H100 PCIe": "h100_pcie", "H200 NVL": "h200_nvl",
            "H200 SXM": "h200", "L40S": "l40s"}


def real_gpu_names() -> set[str]:
    """Every GPU name in the real nvidia-smi outputs (-q "Product Name", --query-gpu name)."""
    names: set[str] = set()
    for path in sorted((REAL / "nvidia-smi-q").glob("*.txt")):
        names |= set(re.findall(r"Product Name\s+:\s+(.+?)\s*$", path.read_text(), re.M))
    for path in sorted((REAL / "nvidia-smi-query-gpu").glob("*.txt")):
        for line in path.read_text().splitlines():
            first = line.split(",")[0].strip()
            if first.startswith("NVIDIA "):
                names.add(first)
    return names


def test_every_catalog_model_has_an_nvml_name_and_a_substring_type() -> None:
    models = catalog()["gpu_models"]
    assert set(models) == set(EXPECTED)
    for model, entry in models.items():
        name = entry["nvml_name"]
        assert entry["sources"].get("nvml_name"), model
        detected = gres.slurm_device_name(name)
        assert gres.gres_type(name) == EXPECTED[model]
        assert gres.gres_type(name) in detected, (model, detected)
        old = model.lower().replace(" ", "")
        if " " in model:
            assert old not in detected, "the old rule would have matched after all"


def test_catalog_names_are_the_names_real_tools_print() -> None:
    if not REAL.is_dir():
        pytest.skip(f"real fixtures not found under {REAL} (set FORGE_REAL_FIXTURES)")
    seen = real_gpu_names()
    assert "NVIDIA H100 80GB HBM3" in seen          # the parser fixtures are really there
    models = catalog()["gpu_models"]
    in_real = {m for m, e in models.items() if e["nvml_name"] in seen}
    assert {"H100 NVL", "L40S"} <= in_real, seen
    # models with no capture here say so in their source, for the first real node
    for model in set(models) - in_real:
        assert "confirm" in models[model]["sources"]["nvml_name"], model


def test_every_real_name_gets_a_type_slurmd_keeps() -> None:
    if not REAL.is_dir():
        pytest.skip(f"real fixtures not found under {REAL} (set FORGE_REAL_FIXTURES)")
    names = real_gpu_names()
    assert names
    for name in names:
        t = gres.gres_type(name)
        assert t and " " not in t and t == t.lower()
        assert t in gres.slurm_device_name(name)
    assert gres.gres_type("NVIDIA H100 80GB HBM3") == "h100_80gb_hbm3"
    assert gres.slurm_device_name("NVIDIA H100 80GB HBM3") == "nvidia_h100_80gb_hbm3"


def test_unknown_name_gives_no_type() -> None:
    assert gres.gres_type("") == ""


@pytest.mark.parametrize(("sockets", "gpus", "cps", "cores"), [
    ((0, 0, 0, 0, 1, 1, 1, 1), 8, 64, ["0-63"] * 4 + ["64-127"] * 4),
    ((0, 1), 2, 1, ["0", "1"]),
])
def test_cores_per_gpu(sockets: tuple[int, ...], gpus: int, cps: int, cores: list[str]) -> None:
    assert gres.default_gpu_sockets(gpus, max(sockets) + 1) == sockets
    assert gres.gpu_cores(sockets, cps) == cores


@pytest.mark.parametrize("name", builtin_profile_names())
def test_inventory_carries_type_cores_and_threads(name: str) -> None:
    p = build_profile(name, resolve_profile_dict(name, {}))
    hw = hw_vars(p)
    assert hw["cpu"]["threads_per_core"] == p.cpu.threads_per_core
    if p.gpu is not None:
        assert hw["gpu"]["gres_type"] == EXPECTED[p.gpu.model]
        assert len(hw["gpu"]["cores"]) == p.gpu.count
    if p.name.startswith("sr675v3"):
        assert p.cpu.threads_per_core == 2          # SMT on (EPYC 9004 default)
        assert "verify" in p.source("gpu.cpu_sockets").lower()


def test_cpu_sockets_must_match_the_gpus() -> None:
    from provision.spec.profiles import ProfileProblem
    d = resolve_profile_dict("sr675v3-h100nvl-ib", {})
    d["gpu"]["cpu_sockets"] = [0, 1]
    with pytest.raises(ProfileProblem, match="2 sockets for 8 GPUs"):
        build_profile("x", d)
    d["gpu"]["cpu_sockets"] = [0] * 7 + [2]
    with pytest.raises(ProfileProblem, match="socket 2 does not exist"):
        build_profile("x", d)

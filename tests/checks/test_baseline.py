"""Golden-node calibration: figures, refusals, the plan it yields, fingerprint equality."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from provision.checks import baseline as B
from provision.errors import InputError
from provision.expectations import plan_site
from provision.measurement import Measurement, write_records
from provision.spec import load_site

ROOT = Path(__file__).resolve().parents[2]
SMALL = ROOT / "site-specs" / "small.yaml"
TOPO = ROOT.parent / "shared" / "fixtures" / "real" / "nvidia-smi-topo"
H100_TOPO = TOPO / "nccl1617-4x-h100-nv6-4nics-numa-spread.txt"
needs_topo = pytest.mark.skipif(not H100_TOPO.exists(), reason="real fixtures not present")


def golden_run(tmp: Path, hbm: float, nccl: float = 38.0, topo: str | None = None) -> Path:
    run = tmp / "golden"
    recs = [Measurement("gpu001", "hbm_bandwidth", hbm + d, gpu=g, check="hbm")
            for g, d in enumerate((0, 10, -10, 5, -5, 0, 2, -2))]
    recs.append(Measurement("gpu001", "nccl_busbw", nccl, check="nccl"))
    recs.append(Measurement("gpu002", "hbm_bandwidth", 1.0, gpu=0, check="hbm"))  # other node
    run.mkdir()
    write_records(run / "measurements.jsonl", recs)
    if topo is not None:
        (run / "raw" / "conformance").mkdir(parents=True)
        (run / "raw" / "conformance" / "gpu001.out").write_text(
            json.dumps({"commands": {"topo": {"stdout": topo}}}))
    return run


@pytest.mark.parametrize("table", ["jsonl", "parquet"])
def test_figures_are_medians_of_the_golden_nodes_readings(tmp_path: Path, table: str) -> None:
    plan = plan_site(load_site(SMALL)).for_node("gpu001")
    run = golden_run(tmp_path, 3400.0)
    if table == "parquet":  # the run written with --table parquet
        from provision.analyze.table import write_measurements
        from provision.measurement import iter_records

        jsonl = run / "measurements.jsonl"
        write_measurements(run, list(iter_records(jsonl)), "parquet")
        jsonl.unlink()
    doc = B.build(run, plan)
    assert doc["figures"]["hbm_bandwidth"] == {"value": 3400.0, "samples": 8, "unit": "GB/s"}
    assert doc["figures"]["nccl_busbw_intra"]["value"] == 38.0
    assert doc["fingerprint"] is None


def test_a_figure_above_physics_is_refused(tmp_path: Path) -> None:
    plan = plan_site(load_site(SMALL)).for_node("gpu001")
    with pytest.raises(InputError, match=r"hbm_bandwidth = 4200 GB/s is above its physical "
                                         r"figure 3900 GB/s .*measurement error"):
        B.build(golden_run(tmp_path, 4200.0), plan)


def test_a_figure_below_the_physics_floor_is_refused(tmp_path: Path) -> None:
    plan = plan_site(load_site(SMALL)).for_node("gpu001")
    with pytest.raises(InputError, match=r"hbm_bandwidth = 2500 GB/s is below the physics "
                                         r"floor 2925 GB/s .*not a golden node"):
        B.build(golden_run(tmp_path, 2500.0), plan)


def test_without_a_baseline_performance_floors_are_provisional() -> None:
    plan = plan_site(load_site(SMALL)).for_node("gpu001")
    hbm = plan.threshold("hbm_bandwidth")
    assert hbm is not None and hbm.provisional and "provisional" in hbm.describe()
    count = plan.threshold("gpu_count")
    assert count is not None and not count.provisional


@needs_topo
def test_baseline_calibrates_the_plan_and_conformance_compares_fingerprints(
        tmp_path: Path, forge: Callable[..., object]) -> None:
    topo = H100_TOPO.read_text()
    run = golden_run(tmp_path, 3400.0, topo=topo)
    doc = yaml.safe_load(SMALL.read_text())
    doc["acceptance"]["baseline"] = "golden.json"
    spec = tmp_path / "site.yaml"
    spec.write_text(yaml.safe_dump(doc))
    code, out, err = forge("baseline", str(SMALL), str(run), "--node", "gpu001",  # type: ignore[misc]
                           "-o", str(tmp_path / "golden.json"))
    assert code == 0, err
    assert "hbm_bandwidth" in out and "fingerprint: 6 GPU pairs" in out  # 4 GPUs
    plan = plan_site(load_site(spec)).for_node("gpu001")
    hbm = plan.threshold("hbm_bandwidth")
    assert hbm is not None and not hbm.provisional
    assert (hbm.fraction, hbm.figure_value, hbm.figure) == (0.95, 3400.0, "golden gpu001")
    assert hbm.limit == 3230.0 and "physics 3900 GB/s" in hbm.source
    # a node whose topology differs from the golden one fails conformance on it
    golden_fp = plan.golden_fingerprint
    assert golden_fp is not None and golden_fp["gpu_gpu"]
    mine = B.fingerprint(topo.replace("NV6", "NV4", 1), "gpu002")
    assert B.differences(golden_fp, mine)
    assert B.differences(golden_fp, B.fingerprint(topo, "gpu002")) == []
    # the same file again is refused unless --force (nothing is lost)
    code, _, err = forge("baseline", str(SMALL), str(run), "--node", "gpu001",  # type: ignore[misc]
                         "-o", str(tmp_path / "golden.json"))
    assert code == 2 and "exists" in err


@needs_topo
def test_gpu_nic_locality_covers_every_compute_port() -> None:
    from provision.checks import registry
    from provision.checks.base import Raw

    plan = plan_site(load_site(SMALL)).for_node("gpu001")
    check = registry.get("conformance")
    doc = {"schema_version": 1, "hostname": "gpu001", "facts": {}, "tools": {},
           "commands": {"topo": {"argv": ["nvidia-smi"], "missing": None, "returncode": 0,
                                 "stdout": H100_TOPO.read_text(), "stderr": ""}}}
    data = check.parse(Raw("gpu001", json.dumps(doc), "", 0))
    recs = check._locality(data, plan)  # type: ignore[attr-defined]
    # 4 compute adapters x 2 ports x their 2 nearest GPUs: no port left unchecked
    assert len(recs) == 16 and len({r.peer for r in recs}) == 8

"""Shared builders: small fleets of measurement records with known values."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
H100 = "NVIDIA H100 NVL"


def gpu_fleet(metric: str = "hbm_bandwidth", *, nodes: int = 4, gpus: int = 8,
              mean: float = 3350.0, sd_rel: float = 0.003, seed: int = 1,
              model: str | None = H100, unit: str | None = "GB/s",
              **extra: Any) -> list[dict[str, Any]]:
    """One GPU-level metric over ``nodes`` x ``gpus`` GPUs, Gaussian around ``mean``."""
    rng = np.random.default_rng(seed)
    out = []
    for n in range(nodes):
        for g in range(gpus):
            r: dict[str, Any] = {"node": f"gpu{n + 1:03d}", "gpu": g, "metric": metric,
                                 "value": float(mean * (1 + rng.normal(0, sd_rel)))}
            if model:
                r["model"] = model
            if unit:
                r["unit"] = unit
            r.update(extra)
            out.append(r)
    return out


def set_value(records: list[dict[str, Any]], node: str, gpu: int | None, factor: float,
              metric: str | None = None) -> None:
    hit = [r for r in records if r["node"] == node and r["gpu"] == gpu
           and (metric is None or r["metric"] == metric)]
    assert hit, (node, gpu)
    for r in hit:
        r["value"] *= factor


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def synth() -> Any:
    """The benchmark's synthetic fleet generator (benchmarks/fleet_synth.py)."""
    spec = importlib.util.spec_from_file_location("fleet_synth",
                                                  ROOT / "benchmarks" / "fleet_synth.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["fleet_synth"] = mod
    spec.loader.exec_module(mod)
    return mod

"""A sweep keeps a run directory: each node's raw probe output, the records, the verdict and
the drain/resume actions under one run id, so a drain traces back to the bytes behind it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from provision.actions.policy import NodeState
from provision.history.store import HistoryStore
from provision.remote.local import LocalLauncher
from provision.spec import load_site
from provision.sweep.expect import for_node
from provision.sweep.run import SweepOptions, local_sweep, sweep_runs_root, sweep_site

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT.parent / "shared" / "fixtures" / "real"
XID63 = REAL / "dmesg-xid" / "stas-xid63-row-remapper-line.txt"


class RecordingSlurm:
    """Stands in for scontrol here (no Slurm on this machine; the real one is in
    tests/sweep/test_lab.py): it records what the sweep asked for."""

    name = "slurm"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def states(self, nodes: Any) -> dict[str, NodeState]:
        return {n: NodeState(n, "idle", False) for n in nodes}

    def drain(self, node: str, reason: str) -> None:
        self.calls.append(f"drain {node}")

    def resume(self, node: str) -> None:
        self.calls.append(f"resume {node}")

    def describe(self, node: str, action: str, reason: str) -> str:
        return f"scontrol update nodename={node} state={action}"


@pytest.mark.skipif(not XID63.is_file(), reason="real fixtures not present")
def test_a_drain_traces_back_to_the_raw_probe_output(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # the real probe script runs in a real shell; only the kernel log is a recording
    monkeypatch.setenv("FORGE_SWEEP_XID_FILE", str(XID63))
    site = load_site(ROOT / "site-specs/small.yaml")
    exp = replace(for_node(site, site.node("gpu001")), gpu_count=0, rdma_ports=0, limits=())
    spec = ROOT / "site-specs/small.yaml"
    opts = SweepOptions(drain=True, db=tmp_path / "h.db", run_dir=True,
                        runs_dir=tmp_path / "runs")
    sched = RecordingSlurm()
    result = local_sweep(exp, opts, sched, source=spec)
    assert sched.calls == ["drain gpu001"]
    run = tmp_path / "runs" / result.run_id
    assert run.is_dir() and result.run_id.startswith("sweep-")
    record = json.loads((run / "forge-run.json").read_text())
    assert record["kind"] == "sweep" and record["schema_version"] == 1
    assert record["exit_code"] == int(result.exit_code()) == 1 and record["finished"]
    assert (run / "spec.yaml").read_bytes() == spec.read_bytes()
    plan = json.loads((run / "plan.json").read_text())
    assert plan["kind"] == "forge-sweep-plan" and plan["nodes"]["gpu001"]["node"] == "gpu001"
    raw = (run / "raw" / "gpu001.out").read_text()
    assert XID63.read_text().strip() in raw                 # the bytes that caused it
    assert json.loads((run / "raw" / "gpu001.json").read_text())["status"] == "ok"
    verdict = json.loads((run / "verdict.json").read_text())
    node = verdict["nodes"][0]
    assert node["status"] == "failing" and "records" not in node
    assert node["findings"][0]["metric"] == "xid_fatal_events"
    records = [json.loads(ln) for ln in (run / "measurements.jsonl").read_text().splitlines()]
    assert any(r["metric"] == "xid_fatal_events" and r["value"] >= 1 for r in records)
    actions = json.loads((run / "actions.json").read_text())
    assert actions["run_id"] == run.name
    assert [(a["node"], a["action"]) for a in actions["actions"]] == [("gpu001", "drain")]
    with HistoryStore(tmp_path / "h.db") as store:                # and the history agrees
        assert [a["run_id"] for a in store.actions("gpu001")] == [run.name]


def test_fan_out_keeps_each_nodes_output_and_prunes_old_sweeps(tmp_path: Path) -> None:
    site = load_site(ROOT / "site-specs/small.yaml")
    opts = SweepOptions(nodes="gpu[001-002]", db=tmp_path / "h.db", run_dir=True, keep_runs=2)
    assert sweep_runs_root(opts) == tmp_path / "runs"            # beside the history store
    made = []
    for _ in range(4):
        result = sweep_site(site, opts, launcher=LocalLauncher())
        made.append(tmp_path / "runs" / result.run_id)
    run = made[-1]
    for node in ("gpu001", "gpu002"):
        assert (run / "raw" / f"{node}.out").read_text().strip(), node
        assert (run / "raw" / f"{node}.rc").exists()
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(
        p.name for p in made[-2:])


def test_no_run_directory_unless_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    site = load_site(ROOT / "site-specs/small.yaml")
    sweep_site(site, SweepOptions(nodes="gpu001", db=tmp_path / "h.db"),
               launcher=LocalLauncher())
    assert not (tmp_path / "runs").exists()


def test_cli_local_sweep_keeps_a_run_directory_only_when_asked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forge: Any) -> None:
    monkeypatch.delenv("FORGE_RUNS_DIR", raising=False)
    monkeypatch.setenv("FORGE_SWEEP_XID_FILE", "/dev/null")
    spec = str(ROOT / "site-specs/small.yaml")
    base = ("sweep", "--local", spec, "--node", "gpu001", "--db", str(tmp_path / "h.db"))
    code, _out, _err = forge(*base)
    assert code in (0, 1, 4) and not (tmp_path / "runs").exists()   # Slurm health checks
    monkeypatch.setenv("FORGE_RUNS_DIR", str(tmp_path / "env"))
    code, _out, _err = forge(*base)
    assert [p.name[:6] for p in (tmp_path / "env").iterdir()] == ["sweep-"]
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "provision", *base, "--runs-dir",
                           str(tmp_path / "flag"), "--json"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    doc = json.loads(done.stdout)
    assert Path(doc["run_dir"]).parent == tmp_path / "flag" and Path(doc["run_dir"]).is_dir()
    record = json.loads((Path(doc["run_dir"]) / "forge-run.json").read_text())
    assert record["exit_code"] == done.returncode
    assert record["command"][-5:] == ["--db", str(tmp_path / "h.db"), "--runs-dir",
                                      str(tmp_path / "flag"), "--json"]


def test_a_sweep_run_directory_keeps_its_records_as_parquet_when_asked(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    from provision.analyze.load import read_records, resolve

    site = load_site(ROOT / "site-specs/small.yaml")
    opts = SweepOptions(nodes="gpu[001-002]", db=tmp_path / "h.db", run_dir=True,
                        table="parquet")
    result = sweep_site(site, opts, launcher=LocalLauncher())
    run = tmp_path / "runs" / result.run_id
    assert [p.name for p in run.glob("measurements.*")] == ["measurements.parquet"]
    assert json.loads((run / "verdict.json").read_text())["measurements"] == \
        "measurements.parquet"
    want = [{"gpu": None, **r.to_dict()} for r in result.records]
    assert want and read_records(resolve(run), strict=True) == want

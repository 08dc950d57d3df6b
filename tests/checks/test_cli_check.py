"""`forge check` end to end over a real sshd on loopback, and the engine's failure paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from provision import parsers
from provision.checks.base import Check, Context, Needs, Raw
from provision.checks.engine import Engine
from provision.cli.main import main
from provision.errors import InputError
from provision.expectations import NodePlan, plan_site
from provision.measurement import Measurement, read_dicts
from provision.remote.local import LocalLauncher
from provision.runs import Run
from provision.spec import load_site

from .conftest import Sshd


def _spec(tmp: Path, s: Sshd, *, dead: bool = False) -> Path:
    groups = [f"""  - name: ctl
    nodes: t1
    roles: [controller, compute]
    profile: lab-container
    rack: lab
    addresses: {{management: 10.89.0.11, ssh: "127.0.0.1:{s.port}"}}
  - name: w
    nodes: t2
    roles: [compute]
    profile: lab-container
    rack: lab
    addresses: {{management: 10.89.0.12, ssh: "127.0.0.2:{s.port}"}}
"""]
    if dead:
        groups.append("""  - name: gone
    nodes: t9
    roles: [compute]
    profile: lab-container
    rack: lab
    addresses: {management: 10.89.0.19, ssh: "127.0.0.1:1"}
""")
    text = f"""spec_version: 1
cluster: {{name: t, domain: t.internal}}
access: {{user: {s.user}, ssh_key: {s.key}, known_hosts: {s.known_hosts}}}
networks:
  management: {{subnet: 10.89.0.0/24}}
  fabric: {{type: none}}
node_groups:
{"".join(groups)}stack: {{scheduler: slurm, versions: {{slurm: "22.05"}}, sources: {{mode: public}}}}
acceptance: {{checks: [conformance]}}
"""
    path = tmp / "site.yaml"
    path.write_text(text)
    return path


def _forge(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(args)
        raise SystemExit(0)
    return int(exc.value.code or 0)


def test_check_over_ssh_writes_a_run_directory(sshd: Sshd, tmp_path: Path) -> None:
    run = tmp_path / "run"
    rc = _forge(["check", str(_spec(tmp_path, sshd)), "--via", "ssh", "--checks",
                 "conformance", "-o", str(run)])
    assert rc == 0
    verdict = json.loads((run / "verdict.json").read_text())
    assert verdict["schema_version"] == 1 and verdict["result"] == "pass"
    assert verdict["checks"][0]["nodes"]["t2"]["status"] == "pass"
    recs = read_dicts(run / "measurements.jsonl", strict=True)
    cpu = next(r for r in recs if r["metric"] == "cpu_count" and r["node"] == "t1")
    assert cpu["value"] >= 1 and cpu["min"] == 1 and "node.cpu_cores" in cpu["source"]
    assert (run / "raw" / "conformance" / "t1.rc").read_text() == "0\n"
    out = json.loads((run / "raw" / "conformance" / "t1.out").read_text())
    assert out["facts"]["memory"]["mem_total_kib"] > 0
    spec = _spec(tmp_path, sshd)
    assert (run / "spec.yaml").read_bytes() == spec.read_bytes()     # as the user wrote it
    assert json.loads((run / "spec.json").read_text())["cluster"]
    assert json.loads((run / "plan.json").read_text())["schema_version"] == 1
    record = json.loads((run / "forge-run.json").read_text())
    assert record["schema_version"] == 1 and record["kind"] == "check"
    assert record["exit_code"] == 0 and record["status"] == "pass" and record["finished"]
    assert record["checks"] == ["conformance"] and record["forge_version"]
    # never overwritten
    assert _forge(["check", str(_spec(tmp_path, sshd)), "--via", "ssh", "-o", str(run)]) == 2


def test_unreachable_node_exits_4_and_others_still_run(sshd: Sshd, tmp_path: Path) -> None:
    run = tmp_path / "run"
    rc = _forge(["check", str(_spec(tmp_path, sshd, dead=True)), "--via", "ssh", "--checks",
                 "conformance", "-o", str(run)])
    assert rc == 4
    nodes = json.loads((run / "verdict.json").read_text())["checks"][0]["nodes"]
    assert nodes["t9"]["status"] == "unreachable" and nodes["t1"]["status"] == "pass"
    recs = read_dicts(run / "measurements.jsonl", strict=True)
    assert any(r["node"] == "t9" and r["metric"] == "node_reachable" and r["value"] == 0
               for r in recs)


def test_bad_input_exits_2(sshd: Sshd, tmp_path: Path) -> None:
    spec = _spec(tmp_path, sshd)
    assert _forge(["check", str(spec), "--checks", "nope"]) == 2
    assert _forge(["check", str(spec), "--nodes", "t[1-5]"]) == 2
    assert _forge(["check", str(tmp_path / "missing.yaml")]) == 2


class _Hang(Check):
    name = "hang"
    description = "sleeps past its timeout"
    needs = Needs()
    timeout_s = 1.0

    def argv(self, ctx: Context) -> list[str]:
        return ["sh", "-c", "sleep 30"]

    def parse(self, raw: Raw) -> Any:
        return raw.stdout

    def measurements(self, data: Any, plan: NodePlan) -> list[Measurement]:
        return []


class _NeedsHbm(_Hang):
    name = "needs-hbm"
    references: ClassVar[tuple[str, ...]] = ("hbm_bandwidth",)


class _Missing(_Hang):
    name = "missing"

    def argv(self, ctx: Context) -> list[str]:
        return ["forge-no-such-tool"]


class _HugeNumber(_Hang):
    """Prints an nccl-tests log with a size of 5,000 digits, read by the real parser."""

    name = "huge-number"

    def argv(self, ctx: Context) -> list[str]:
        return ["sh", "-c", "printf '# nThread 1 nGpus 1 minBytes 8 maxBytes 8 step: 2(factor)\\n"
                "#  size  count  type  redop  root  time  algbw  busbw  #wrong  time  algbw  "
                "busbw  #wrong\\n  %s  2  float  sum  -1  1.0  0.0  0.0  0  1.0  0.0  0.0  0\\n"
                "# Avg bus bandwidth    : 0\\n' " + "9" * 5000]

    def parse(self, raw: Raw) -> Any:
        return parsers.get("nccl-tests").parse(raw.stdout, node=raw.key, source_name=raw.key)


def _engine(tmp: Path, s: Sshd) -> Engine:
    site = load_site(_spec(tmp, s))
    local = LocalLauncher()
    return Engine(site, plan_site(site), local, cluster_launcher=local, cluster_node="t1",
                  via="local", rundir=Run.create("check", out=tmp / "run"))


def test_engine_reports_timeout_missing_tool_and_missing_reference(sshd: Sshd,
                                                                   tmp_path: Path) -> None:
    report = _engine(tmp_path, sshd).run([_Hang(), _Missing(), _NeedsHbm()], ["t1"])
    status = {o.check: o.status["t1"] for o in report.outcomes}
    assert status == {"hang": "timeout", "missing": "not-installed", "needs-hbm": "error"}
    reasons = {o.check: o.reasons["t1"] for o in report.outcomes}
    assert "killed after 1 s timeout" in reasons["hang"]
    assert reasons["missing"] == "forge-no-such-tool: not installed"
    assert "no reference 'hbm_bandwidth'" in reasons["needs-hbm"]
    metrics = {(r.check, r.metric, r.value) for r in report.records}
    assert ("hang", "tool_ran_ok", 0.0) in metrics and ("missing", "tool_present", 0.0) in metrics
    assert not report.all_passed


def test_output_with_a_number_python_refuses_is_that_nodes_error(sshd: Sshd,
                                                                  tmp_path: Path) -> None:
    """Not an abort of the whole run: the node's check is an error, the next check runs."""
    report = _engine(tmp_path, sshd).run([_HugeNumber(), _Missing()], ["t1"])
    status = {o.check: o.status["t1"] for o in report.outcomes}
    assert status == {"huge-number": "error", "missing": "not-installed"}
    reason = {o.check: o.reasons["t1"] for o in report.outcomes}["huge-number"]
    assert reason.startswith("output not understood: a number in the input has more digits")


def test_run_directory_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep").write_text("mine")
    with pytest.raises(InputError, match="not an empty directory"):
        Run.create("check", out=tmp_path / "x")
    assert (tmp_path / "x" / "keep").read_text() == "mine"


def test_run_directory_comes_from_runs_dir_else_forge_runs_dir(
        sshd: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = str(_spec(tmp_path, sshd))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FORGE_RUNS_DIR", str(tmp_path / "env"))
    args = ["check", spec, "--via", "local", "--checks", "tools", "--nodes", "t1"]
    assert _forge(args) in (0, 1)
    assert _forge([*args, "--runs-dir", str(tmp_path / "flag")]) in (0, 1)
    (env_run,) = (tmp_path / "env").iterdir()
    (flag_run,) = (tmp_path / "flag").iterdir()
    assert not (tmp_path / "runs").exists()
    for run in (env_run, flag_run):
        assert run.name.startswith("check-")
        record = json.loads((run / "forge-run.json").read_text())
        assert record["kind"] == "check" and record["exit_code"] in (0, 1)
        assert (run / "verdict.json").exists()


def test_a_check_run_as_parquet_gives_the_findings_of_the_run_as_jsonl(
        sshd: Sshd, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pyarrow")
    from provision.analyze.load import read_records

    args = ["check", str(_spec(tmp_path, sshd)), "--via", "local", "--checks", "tools",
            "--nodes", "t1"]
    runs = {fmt: tmp_path / fmt for fmt in ("jsonl", "parquet")}
    for fmt, run in runs.items():
        assert _forge([*args, "--table", fmt, "-o", str(run)]) in (0, 1)
        assert json.loads((run / "verdict.json").read_text())["measurements"] == \
            f"measurements.{fmt}"
        assert [p.name for p in run.glob("measurements.*")] == [f"measurements.{fmt}"]
    jsonl, parquet = (read_records(runs[f] / f"measurements.{f}", strict=True) for f in runs)
    assert parquet == jsonl and any(r["value"] == 0 for r in jsonl)  # a tool is missing here
    capsys.readouterr()
    docs = []
    for run in runs.values():
        code = _forge(["analyze", str(run), "--json"])
        doc = json.loads(capsys.readouterr().out)
        docs.append((code, doc["flagged"], doc["nodes"], doc["summary"]))
    assert docs[0] == docs[1] and docs[0][0] == 1 and docs[0][1]

"""The sweep and history commands, reports and install files (CliRunner, real files)."""

from __future__ import annotations

import ast
import json
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from provision.errors import InputError
from provision.history.store import HistoryStore, RunInfo
from provision.measurement import TABLE_FORMATS, Measurement
from provision.sweep import install as inst
from provision.sweep import report
from provision.sweep.result import SweepResult, from_document, node_result

ROOT = Path(__file__).resolve().parents[2]
LAB_SPEC = ROOT / "site-specs/lab.yaml"
ROLE = ROOT / "playbooks/roles/health_sweep"


def _result() -> SweepResult:
    ok = node_result("gpu001", [Measurement(node="gpu001", metric="xid_events", value=0,
                                            check="xid", max=0.0)])
    bad = node_result("gpu002", [
        Measurement(node="gpu002", metric="ecc_uncorrected_volatile", value=2, gpu=3,
                    check="gpu", max=0.0),
        Measurement(node="gpu002", metric="gpu_temperature", value=61, gpu=3, check="gpu")])
    gone = node_result("gpu003", [Measurement(node="gpu003", metric="node_reachable", value=0,
                                              check="reach", min=1.0)],
                       reachable=False, why_unreachable="unreachable: connection refused")
    return SweepResult("sweep-t-1", "quick", 1_700_000_000.0, 1_700_000_004.5, (ok, bad, gone))


def test_verdict_and_exit_codes() -> None:
    r = _result()
    assert [n.status for n in r.nodes] == ["healthy", "failing", "unreachable"]
    assert r.nodes[1].findings[0].fatal and r.nodes[1].findings[0].gpu == 3
    assert int(r.exit_code()) == 4                 # failing + unreachable: 4 wins (exit-codes.md)
    without_gone = SweepResult("x", "quick", 0, 1, (r.nodes[0], r.nodes[1]))
    assert int(without_gone.exit_code()) == 1
    only_gone = SweepResult("x", "quick", 0, 1, (r.nodes[0], r.nodes[2]))
    assert int(only_gone.exit_code()) == 4         # unreachable is never healthy
    assert report.nhc_line(r.nodes[1]).startswith("ERROR: gpu002 gpu3: FATAL gpu/ecc_")
    assert report.nhc_line(r.nodes[0]) == "OK"


def test_table_groups_and_document_round_trip() -> None:
    r = _result()
    text = report.table(r)
    assert "gpu003: UNREACHABLE (unreachable: connection refused)" in text
    assert "gpu001: healthy" in text
    back = from_document(json.loads(json.dumps(r.to_dict())), source="t.json")
    assert [n.status for n in back.nodes] == ["healthy", "failing", "unreachable"]


def test_junit_from_the_analyzer_is_valid_against_the_ant_schema() -> None:
    xmlschema = pytest.importorskip("xmlschema")
    from provision.report.junit import junit_xml
    from provision.sweep.analysis import analyze_sweep

    schema = xmlschema.XMLSchema(str(ROOT / "tests/analyze/JUnit.xsd"))
    a = analyze_sweep(_result(), None)
    assert a is not None
    xml = junit_xml(a)
    schema.validate(xml)
    assert set(a.failing_nodes) == {"gpu002", "gpu003"}   # unreachable is never a pass


def test_drift_against_the_history_baseline(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    now = time.time()
    temps = {f"gpu{i:03d}": 50.0 + i % 3 for i in range(1, 17)}   # a fleet within 2 C
    with HistoryStore(db) as store:   # a week of steady readings
        for day in range(7):
            store.record(RunInfo(f"d{day}", now - 86400 * (7 - day)), [
                Measurement(node=n, metric="gpu_temperature", value=t, gpu=0, unit="C")
                for n, t in temps.items()])
    # gpu003 runs 7 C hotter than its own week: worse than its past, not yet a fleet outlier
    now_temps = {**temps, "gpu003": temps["gpu003"] + 7}
    res = SweepResult("now", "quick", now, now + 1, tuple(
        node_result(n, [Measurement(node=n, metric="gpu_temperature", value=t, gpu=0,
                                    unit="C")]) for n, t in now_temps.items()))
    from provision.sweep.analysis import analyze_sweep

    a = analyze_sweep(res, db)
    assert a is not None and a.baseline_size == 16
    drift = [f for f in a.findings if f.kind == "drift"]
    assert [(f.node, f.baseline) for f in drift] == [("gpu003", 50.0)]
    assert "drift gpu003 GPU 0 gpu_temperature" in report.analysis_lines(a)
    assert analyze_sweep(res, db, baseline_days=0).baseline_size == 0  # type: ignore[union-attr]


def test_prometheus_textfile_parses() -> None:
    parser = pytest.importorskip("prometheus_client.parser")
    text = report.prometheus(_result())
    fams = {f.name: f for f in parser.text_string_to_metric_families(text)}
    healthy = {s.labels["node"]: s.value for s in fams["forge_sweep_node_healthy"].samples}
    assert healthy == {"gpu001": 1, "gpu002": 0, "gpu003": 0}
    assert fams["forge_sweep_exit_code"].samples[0].value == 4  # failing + unreachable


def test_history_cli_sparklines_json_and_compaction(tmp_path: Path, forge: Callable[..., Any]) -> None:
    db = tmp_path / "h.db"
    now = time.time()
    with HistoryStore(db) as store:
        for i, temp in enumerate([40, 41, 45, 70]):
            store.record(RunInfo(f"r{i}", now - 3600 * (4 - i)), [Measurement(
                node="gpu001", metric="gpu_temperature", value=temp, gpu=0, unit="C")])
    run = forge("history", "gpu[001-002]", "--metric", "gpu_temperature",
                                   "--db", str(db), "--since", "1d")
    assert run.exit_code == 0, run.output
    assert "gpu001 gpu0" in run.output and "last 70" in run.output and "▁" in run.output
    run = forge("history", "--db", str(db), "--json", "--since", "150m")
    assert [s["value"] for s in json.loads(run.output)["samples"]] == [45.0, 70.0]
    run = forge("history", "--db", str(db), "--since", "yesterday")
    assert run.exit_code == 2 and "--since 'yesterday'" in run.output
    run = forge("history", "--db", str(db), "--compact", "--raw-days", "0",
                                   "--keep-days", "30d")
    assert run.exit_code == 0 and "4 raw rows folded" in run.output
    run = forge("history", "--db", str(tmp_path / "none.db"))
    assert run.exit_code == 2 and "no history database" in run.output


def test_sweep_import_of_a_daemonset_result(tmp_path: Path, forge: Callable[..., Any]) -> None:
    f = tmp_path / "gpu002.json"
    f.write_text(json.dumps(_result().to_dict()))
    db = tmp_path / "h.db"
    run = forge("sweep", "import", str(f), "--db", str(db))
    assert run.exit_code == 0 and "imported 4 records" in run.output
    run = forge("sweep", "import", str(f), "--db", str(db))
    assert "imported 0 records from 0 files (1 already imported)" in run.output
    with HistoryStore(db) as store:
        assert store.count() == 4
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "forge-sweep-result", "nodes": [{"node": "x", "records": '
                   '[{"node": "x", "metric": "m", "value": "hot", "gpu": null}]}]}')
    run = forge("sweep", "import", str(bad), "--db", str(db))
    assert run.exit_code == 2
    assert "nodes[0].records[0]: field 'value' must be a finite number" in run.output
    huge = tmp_path / "huge.json"
    huge.write_text('{"kind": "forge-sweep-result", "nodes": [{"node": "x", "records": '
                    f'[{{"node": "x", "metric": "m", "value": {"9" * 5000}, "gpu": null}}]}}]}}')
    run = forge("sweep", "import", str(f), str(huge), "--db", str(db))
    assert run.exit_code == 2
    assert f"{huge}: a number in the input has more digits than any tool prints" in run.output


def test_install_writes_timer_cron_and_refuses_to_clobber(tmp_path: Path, forge: Callable[..., Any]) -> None:
    root = tmp_path / "root"
    run = forge("sweep", "install", str(LAB_SPEC), "--root", str(root),
                                   "--interval", "10min", "--drain")
    assert run.exit_code == 0, run.output
    svc = (root / "etc/systemd/system/forge-sweep.service").read_text()
    assert "ExecStart=/usr/bin/flock -n -E 75 /run/lock/forge-sweep.lock" in svc
    assert svc.rstrip().splitlines()[-1] == "IOSchedulingClass=idle" and " --drain" in svc
    assert "OnUnitActiveSec=10min" in (root / "etc/systemd/system/forge-sweep.timer").read_text()
    cfg = json.loads((root / "etc/forge/sweep.json").read_text())
    assert set(cfg["nodes"]) == {"lab-n1", "lab-n2", "lab-n3"}
    assert (root / "usr/local/sbin/forge-health").stat().st_mode & 0o777 == 0o755
    run = forge("sweep", "install", str(LAB_SPEC), "--root", str(root),
                                   "--interval", "20min")
    assert run.exit_code == 2 and "exists with other content" in run.output
    run = forge("sweep", "install", str(LAB_SPEC), "--root", str(root),
                                   "--cron", "--force")
    assert run.exit_code == 0
    cron = (root / "etc/cron.d/forge-sweep").read_text()
    assert "*/15 * * * * root /usr/bin/flock -n -E 75" in cron
    run = forge("sweep", "install", str(LAB_SPEC), "--root", str(root),
                                   "--interval", "often")
    assert run.exit_code == 2 and "--interval 'often'" in run.output


@pytest.mark.parametrize(("mode", "drain", "table"),
                         [("timer", False, "jsonl"), ("cron", True, "parquet"),
                          ("timer", True, "arrow"), ("cron", False, "jsonl")])
def test_ansible_role_renders_what_forge_sweep_install_renders(mode: str, drain: bool,
                                                               table: str) -> None:
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    eff = {**defaults["health_sweep_defaults"], "mode": mode, "drain": drain, "table": table}
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROLE / "templates"),
                             trim_blocks=True, keep_trailing_newline=True)
    opts = inst.InstallOptions(spec=eff["spec"], mode=mode, interval=eff["interval"],
                               cron=eff["cron_schedule"], profile=eff["profile"], drain=drain,
                               db=eff["db"], prom=eff["prom"], junit=eff["junit"],
                               log=eff["log"], forge=eff["forge"], lock=eff["lock"],
                               table=eff["table"])
    ctx = {"health_sweep_settings": eff}
    assert env.get_template("logrotate.j2").render(ctx) == inst.logrotate(opts)
    if mode == "timer":
        assert env.get_template("forge-sweep.service.j2").render(ctx) == inst.service(opts)
        assert env.get_template("forge-sweep.timer.j2").render(ctx) == inst.timer(opts)
    else:
        assert env.get_template("forge-sweep.cron.j2").render(ctx) == inst.cron_entry(opts)


def test_the_role_accepts_the_table_formats_forge_writes() -> None:
    """The role cannot import TABLE_FORMATS: its two lists of names are held to it here."""
    spec = yaml.safe_load((ROLE / "meta/argument_specs.yml").read_text())
    table = spec["argument_specs"]["main"]["options"]["health_sweep_overrides"]["options"]["table"]
    assert table["choices"] == list(TABLE_FORMATS) and table["default"] == "jsonl"
    tasks = yaml.safe_load((ROLE / "tasks/validate.yml").read_text())
    check = next(t["ansible.builtin.assert"]["that"] for t in tasks if t["name"].endswith("table"))
    assert ast.literal_eval(check.split(" in ", 1)[1]) == list(TABLE_FORMATS)


def _installed_sweep(root: Path) -> list[str]:
    """The sweep command line the installed unit runs, after flock's five words."""
    unit = (root / "etc/systemd/system/forge-sweep.service").read_text()
    line = next(ln for ln in unit.splitlines() if ln.startswith("ExecStart="))
    argv = shlex.split(line.removeprefix("ExecStart="))
    assert argv[:5] == ["/usr/bin/flock", "-n", "-E", "75", "/run/lock/forge-sweep.lock"]
    return argv[5:]


def test_an_installed_sweep_writes_the_table_format_it_was_installed_with(
        tmp_path: Path, forge: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pyarrow")
    from provision.analyze.load import read_records
    from provision.remote.local import LocalLauncher

    root, db = tmp_path / "root", tmp_path / "var" / "history.db"
    run = forge("sweep", "install", str(LAB_SPEC), "--root", str(root), "--db", str(db),
                "--prom", str(tmp_path / "sweep.prom"), "--table", "parquet")
    assert run.exit_code == 0, run.output
    argv = _installed_sweep(root)
    assert argv[-2:] == ["--table", "parquet"]
    run = forge("sweep", "install", str(LAB_SPEC), "--root", str(root), "--db", str(db),
                "--prom", str(tmp_path / "sweep.prom"), "--table", "parquet", "--cron",
                "--force")
    cron = (root / "etc/cron.d/forge-sweep").read_text()
    assert run.exit_code == 0 and f"{shlex.join(argv)} >> " in cron     # the same command
    # the installed command as the timer runs it, each node's probes in a local shell
    # (no SSH here: tests/sweep/test_lab.py sweeps real nodes), the JUnit file moved here
    monkeypatch.setattr("provision.sweep.run.launcher_for", lambda *_: LocalLauncher())
    monkeypatch.setenv("FORGE_SWEEP_XID_FILE", "/dev/null")
    monkeypatch.delenv("FORGE_RUNS_DIR", raising=False)
    run = forge(*argv[1:], "--junit", str(tmp_path / "junit.xml"), "--json")
    assert run.exit_code in (0, 1), run.output
    doc = json.loads(run.stdout)
    rundir = Path(doc["run_dir"])
    assert rundir.parent == db.parent / "runs"                    # beside the history store
    assert [p.name for p in rundir.glob("measurements.*")] == ["measurements.parquet"]
    want = [{"gpu": None, **r} for n in doc["nodes"] for r in n["records"]]
    assert len({r["node"] for r in want}) == 3
    assert read_records(rundir / "measurements.parquet", strict=True) == want


def test_a_bad_table_format_installs_nothing(tmp_path: Path, forge: Callable[..., Any]) -> None:
    root = tmp_path / "root"
    run = forge("sweep", "install", str(LAB_SPEC), "--root", str(root), "--table", "csv")
    assert run.exit_code == 2 and "Traceback" not in run.output
    assert "'--table': 'csv' is not one of 'jsonl', 'parquet', 'arrow'" in run.output
    assert not root.exists()
    with pytest.raises(InputError, match="--table 'csv': use one of jsonl, parquet, arrow"):
        inst.InstallOptions(spec="/etc/forge/site.yaml", table="csv")


def test_sweep_needs_a_spec_and_bad_spec_is_one_line(tmp_path: Path, forge: Callable[..., Any]) -> None:
    run = forge("sweep", "--nodes", "x")
    assert run.exit_code == 2 and "SPEC is required" in run.output
    bad = tmp_path / "s.yaml"
    bad.write_text("spec_version: 1\ncluster: {name: x}\n")
    run = forge("sweep", str(bad), "--db", str(tmp_path / "h.db"))
    assert run.exit_code == 2 and "Traceback" not in run.output


def test_daemonset_manifest_is_valid_kubernetes() -> None:
    kv = pytest.importorskip("kubernetes_validate")
    path = ROOT / "provision/sweep/k8s_daemonset.yaml"
    docs = list(yaml.safe_load_all(path.read_text()))
    for d in docs:
        kv.validate(d, "1.30", strict=True)
    ds = next(d for d in docs if d["kind"] == "DaemonSet")
    tol = ds["spec"]["template"]["spec"]["tolerations"]
    assert {"key": "forge.io/unhealthy", "operator": "Exists", "effect": "NoSchedule"} in tol

"""Pure parts of the deploy driver: settings, event folding, resume planning, summary."""

from __future__ import annotations

from pathlib import Path

from provision.deploy import resume, settings
from provision.deploy.driver import DeployResult
from provision.deploy.events import Failure, HostResult, Tracker, message_of
from provision.deploy.summary import summary_lines
from provision.errors import ExitCode


def test_forge_profile_tunes_ssh_forks_and_fact_cache(tmp_path: Path) -> None:
    env = settings.environment("forge", hosts=300, cache_dir=tmp_path / "facts",
                               roles_path=tmp_path / "roles")
    assert env["ANSIBLE_PIPELINING"] == "True"
    assert env["ANSIBLE_FORKS"] == "100"            # capped: one control host, ~100 sessions
    assert "ControlPersist=300s" in env["ANSIBLE_SSH_ARGS"]
    assert env["ANSIBLE_FACT_CACHING"] == "jsonfile"
    assert env["ANSIBLE_FACT_CACHING_CONNECTION"] == str(tmp_path / "facts")
    assert env["ANSIBLE_GATHERING"] == "smart"
    assert settings.forks_for(3) == 5 and settings.forks_for(40) == 40


def test_forge_profile_runs_mitogen_where_installed(tmp_path: Path) -> None:
    mitogen = settings.mitogen_strategy_dir()
    assert mitogen is not None, "mitogen is a dependency of forge"
    env = settings.environment("forge", hosts=3, cache_dir=tmp_path, roles_path=tmp_path,
                               mitogen_dir=mitogen)
    assert env["ANSIBLE_STRATEGY"] == "mitogen_linear"
    assert (Path(env["ANSIBLE_STRATEGY_PLUGINS"]) / "mitogen_linear.py").is_file()
    assert settings.strategy_of(env) == "mitogen_linear"
    without = settings.environment("forge", hosts=3, cache_dir=tmp_path, roles_path=tmp_path)
    ssh = settings.environment("forge-ssh", hosts=3, cache_dir=tmp_path, roles_path=tmp_path,
                               mitogen_dir=mitogen)
    assert without == ssh                            # no Mitogen: the same tuned ssh settings
    assert settings.strategy_of(ssh) == "linear" and "ANSIBLE_STRATEGY_PLUGINS" not in ssh


def test_defaults_profile_sets_only_what_forge_needs(tmp_path: Path) -> None:
    env = settings.environment("defaults", hosts=300, cache_dir=tmp_path,
                               roles_path=tmp_path / "roles",
                               mitogen_dir=settings.mitogen_strategy_dir())
    assert set(env) == {"ANSIBLE_ROLES_PATH", "ANSIBLE_RETRY_FILES_ENABLED", "ANSIBLE_NOCOLOR",
                        "ANSIBLE_HOST_KEY_CHECKING"}
    assert env["ANSIBLE_HOST_KEY_CHECKING"] == "True"


def _ev(kind: str, host: str = "", task: str = "", res: dict | None = None,
        **extra: object) -> dict:
    return {"event": kind, "event_data": {"host": host, "task": task, "res": res or {},
                                          "play": "Play", **extra}}


def test_tracker_folds_every_outcome() -> None:
    t = Tracker(["a", "b", "c", "d"])
    t.feed({"event": "playbook_on_play_start", "event_data": {"name": "Play"}})
    t.feed(_ev("runner_on_ok", "a", "T1", {"changed": True}))
    t.feed(_ev("runner_on_ok", "b", "T1", {"changed": False}))
    t.feed(_ev("runner_on_failed", "b", "T2", {"msg": "boom", "stderr": "E: no such package"},
               task_action="ansible.builtin.apt"))
    t.feed(_ev("runner_on_failed", "a", "T3", {"msg": "ignored"}, ignore_errors=True))
    t.feed(_ev("runner_on_unreachable", "c", "T1", {"msg": "Connection refused"}))
    t.feed({"event": "playbook_on_stats", "event_data": {
        "ok": {"a": 2, "b": 1}, "changed": {"a": 1}, "failures": {"b": 1}, "dark": {"c": 1},
        "processed": {"a": 1, "b": 1, "c": 1}}})
    by_host = {r.host: r for r in t.results()}
    assert by_host["a"].outcome == "changed"
    assert by_host["b"].outcome == "failed"
    assert by_host["b"].failure == Failure("b", "Play", "T2", "ansible.builtin.apt",
                                           "boom | E: no such package", unreachable=False)
    assert by_host["c"].outcome == "unreachable" and by_host["c"].failure is not None
    assert by_host["d"].outcome == "not run"
    assert t.state_text("b") == "FAILED at T2"


def test_message_of_looks_into_loop_items() -> None:
    res = {"msg": "One or more items failed",
           "results": [{"failed": False, "msg": "fine"},
                       {"failed": True, "msg": "x_url was removed", "_ansible_item_label": "x_url"}]}
    assert message_of(res) == "(item x_url) x_url was removed"
    assert message_of({}) == "no message"
    assert len(message_of({"msg": "x" * 5000})) == 600


def test_resume_reruns_failed_unreachable_and_never_ran() -> None:
    record = {"targets": ["n1", "n2", "n3", "n4"],
              "results": [{"host": "n1", "outcome": "ok"}, {"host": "n2", "outcome": "failed"},
                          {"host": "n3", "outcome": "unreachable"},
                          {"host": "n4", "outcome": "not run"}]}
    assert resume.hosts_to_rerun(record) == (["n2", "n3", "n4"], ["n1"])


def _result(tmp_path: Path, *results: HostResult, rc: int = 0) -> DeployResult:
    return DeployResult(tmp_path, tuple(r.host for r in results), results, rc, "x", 1.5)


def test_summary_groups_by_node_set_and_names_each_failure(tmp_path: Path) -> None:
    fail = Failure("gpu003", "Slurm", "Install Slurm", "ansible.builtin.package",
                   "No package matching 'slurmd'", unreachable=False)
    res = _result(
        tmp_path,
        HostResult("gpu001", "ok", 30, 0, 3, None), HostResult("gpu002", "ok", 30, 0, 3, None),
        HostResult("gpu004", "ok", 30, 0, 3, None),
        HostResult("gpu003", "failed", 10, 0, 1, fail), rc=2)
    lines = summary_lines(res, spec="site.yaml")
    text = "\n".join(lines)
    assert "gpu[001-002,004]  ok, no changes" in text
    assert 'gpu003: failed at task "Install Slurm"' in text
    assert "No package matching 'slurmd'" in text
    assert f"log gpu003: {tmp_path / 'hosts' / 'gpu003.log'}" in text
    assert "forge deploy site.yaml --resume" in text
    assert res.exit_code == ExitCode.DEPLOY_FAILED


def test_exit_codes_follow_the_table(tmp_path: Path) -> None:
    ok = HostResult("a", "ok", 1, 0, 0, None)
    dark = HostResult("b", "unreachable", 0, 0, 0,
                      Failure("b", "P", "T", "", "refused", unreachable=True))
    assert _result(tmp_path, ok).exit_code == ExitCode.OK
    assert _result(tmp_path, ok, dark, rc=4).exit_code == ExitCode.HOSTS_UNREACHABLE
    assert _result(tmp_path, HostResult("c", "not run", 0, 0, 0, None)).exit_code \
        == ExitCode.DEPLOY_FAILED

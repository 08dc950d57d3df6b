"""Run directories (provision.runs): one naming, an exclusive create, a versioned record,
the spec kept byte for byte, secrets scrubbed from the command line, old sweeps pruned."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from provision import runs
from provision.errors import InputError

NAME = re.compile(r"^(check|deploy|sweep)-\d{8}T\d{6}Z-[0-9a-f]{6}$")


def _make(root: str) -> str:
    return runs.new_run_dir("check", Path(root)).name


def test_many_threads_and_processes_at_once_never_share_a_directory(tmp_path: Path) -> None:
    with ThreadPoolExecutor(32) as pool:
        threads = list(pool.map(_make, [str(tmp_path)] * 400))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as procs:
        forked = procs.map(_make, [str(tmp_path)] * 200)
    names = threads + forked
    assert len(set(names)) == len(names) == 600
    assert all(NAME.match(n) for n in names), names[:3]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


def test_a_taken_name_is_retried_with_a_new_id(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    ids = iter(["aaaaaa", "aaaaaa", "bbbbbb"])
    monkeypatch.setattr(runs.secrets, "token_hex", lambda _n: next(ids))
    monkeypatch.setattr(runs, "stamp", lambda now=None: "20260101T000000Z")
    first = runs.new_run_dir("sweep", tmp_path)
    second = runs.new_run_dir("sweep", tmp_path)
    assert first.name == "sweep-20260101T000000Z-aaaaaa"
    assert second.name == "sweep-20260101T000000Z-bbbbbb"


def test_root_is_the_flag_else_the_environment_else_cwd(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(runs.ENV, raising=False)
    assert runs.runs_root() == tmp_path / "runs"
    monkeypatch.setenv(runs.ENV, str(tmp_path / "env"))
    assert runs.runs_root() == tmp_path / "env"
    assert runs.runs_root(tmp_path / "flag") == tmp_path / "flag"


def test_record_is_versioned_and_finished_with_the_exit_code(tmp_path: Path) -> None:
    run = runs.Run.create("check", root=tmp_path, argv=["forge", "check", "s.yaml",
                                                        "--bmc-password", "hunter2"],
                          site="s")
    rec = json.loads((run.path / runs.RECORD).read_text())
    assert rec["schema_version"] == runs.SCHEMA_VERSION and rec["kind"] == "check"
    assert rec["status"] == "running" and rec["exit_code"] is None and rec["forge_version"]
    assert rec["command"] == ["forge", "check", "s.yaml", "--bmc-password", "***"]
    run.finish(4)
    rec = json.loads((run.path / runs.RECORD).read_text())
    assert rec["exit_code"] == 4 and rec["status"] == "failed" and rec["finished"] >= \
        rec["started"] and rec["site"] == "s"


def test_spec_is_kept_byte_for_byte(tmp_path: Path) -> None:
    spec = tmp_path / "site.yaml"
    data = b"# my comment\r\nspec_version: 1   # trailing\n\xe2\x82\xac: x\n"
    spec.write_bytes(data)
    spec.chmod(0o600)
    run = runs.Run.create("deploy", root=tmp_path / "r")
    run.keep_spec(spec)
    assert (run.path / "spec.yaml").read_bytes() == data
    assert (run.path / "spec.yaml").stat().st_mode & 0o777 == 0o600   # never wider than given


def test_explicit_directory_is_used_once_and_never_reused(tmp_path: Path) -> None:
    out = tmp_path / "mine" / "run"
    assert runs.Run.create("check", out=out).path == out
    with pytest.raises(InputError, match="not an empty directory"):
        runs.Run.create("check", out=out)
    (tmp_path / "empty").mkdir()
    assert runs.Run.create("check", out=tmp_path / "empty").path == tmp_path / "empty"


@pytest.mark.parametrize(("argv", "want"), [
    (["--password", "x"], ["--password", "***"]),
    (["--bmc-token=abc"], ["--bmc-token=***"]),
    (["password=abc", "a=b"], ["password=***", "a=b"]),
    (["https://user:pw@host/x"], ["https://***@host/x"]),
    (["--api-key", "k", "--nodes", "gpu001"], ["--api-key", "***", "--nodes", "gpu001"]),
    (["check", "site.yaml", "--checks", "sdc"], ["check", "site.yaml", "--checks", "sdc"]),
])
def test_command_line_secrets_are_scrubbed(argv: list[str], want: list[str]) -> None:
    assert runs.scrub_argv(argv) == want


def test_prune_keeps_the_newest_runs_of_a_kind_and_nothing_else(tmp_path: Path) -> None:
    made = []
    for i in range(6):
        p = tmp_path / f"sweep-202601{i + 1:02d}T000000Z-00000{i}"
        p.mkdir()
        (p / runs.RECORD).write_text(json.dumps({"kind": "sweep"}))
        made.append(p)
    stranger = tmp_path / "sweep-notes"          # not made by forge: left alone
    stranger.mkdir()
    check = runs.Run.create("check", root=tmp_path)
    removed = runs.prune(tmp_path, "sweep", 2, spare=[made[0]])
    left = sorted(p.name for p in tmp_path.iterdir())
    assert set(removed) == set(made[1:5])
    assert left == sorted([made[0].name, made[5].name, stranger.name, check.name])
    with pytest.raises(InputError, match="--keep"):
        runs.prune(tmp_path, "sweep", -1)


def test_unwritable_root_is_bad_input(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        blocker = tmp_path / "file"
        blocker.write_text("")
        with pytest.raises(InputError, match="runs directory"):
            runs.new_run_dir("check", blocker / "runs")
    else:
        tmp_path.chmod(0o500)
        with pytest.raises(InputError, match="runs directory"):
            runs.new_run_dir("check", tmp_path / "runs")

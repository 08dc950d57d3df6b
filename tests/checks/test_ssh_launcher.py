"""The SSH launcher against a real sshd on loopback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from provision.errors import InputError
from provision.remote.base import Command, Target
from provision.remote.ssh import SshLauncher, SshSettings, remote_command, split_pgid

from .conftest import Sshd


def _launcher(s: Sshd, names: list[str], *, known: Path | None = None,
              port: int | None = None) -> SshLauncher:
    targets = {n: Target(n, "127.0.0.1", port or s.port, s.user) for n in names}
    return SshLauncher(targets, SshSettings(str(s.key), str(known or s.known_hosts),
                                            connect_timeout=3))


def test_remote_command_quotes_every_word() -> None:
    line = remote_command(("echo", "a b", "$HOME"))
    assert line.startswith("setsid -w sh -c ")
    assert "'a b'" in line and "'$HOME'" in line


def test_split_pgid() -> None:
    assert split_pgid("@@forge-pgid 4242\noops\n") == (4242, "oops\n")
    assert split_pgid("plain\n") == (None, "plain\n")


def test_runs_on_many_nodes_with_stdin_and_exit_codes(sshd: Sshd) -> None:
    names = [f"n{i}" for i in range(6)]
    with _launcher(sshd, names) as ssh:
        cmds = {n: Command(("sh", "-c", f"read x; echo $x-{n}; echo err >&2; exit {i}"),
                           timeout=20, stdin="hello\n") for i, n in enumerate(names)}
        res = ssh.run(cmds)
    assert res["n0"].status == "ok" and res["n0"].stdout == "hello-n0\n"
    assert res["n0"].stderr == "err\n"  # the process-group line is taken off
    assert res["n3"].status == "failed" and res["n3"].returncode == 3


def test_connection_is_reused(sshd: Sshd) -> None:
    with _launcher(sshd, ["a"]) as ssh:
        ssh.run({"a": Command(("true",), timeout=10)})
        first = next(iter(ssh._clients.values())).get_transport()
        ssh.run({"a": Command(("true",), timeout=10)})
        assert next(iter(ssh._clients.values())).get_transport() is first


def test_missing_tool_is_not_installed(sshd: Sshd) -> None:
    with _launcher(sshd, ["a"]) as ssh:
        r = ssh.run({"a": Command(("forge-no-such-tool", "-x"), timeout=10)})["a"]
    assert r.status == "not-installed"
    assert r.detail == "forge-no-such-tool: not installed"


def test_timeout_kills_the_remote_process_group(sshd: Sshd, tmp_path: Path) -> None:
    marker = tmp_path / "grandchild-alive"
    # a grandchild in the background that would write the marker after 3 s
    script = f"(sleep 3; touch {marker}) & sleep 60"
    with _launcher(sshd, ["a"]) as ssh:
        t0 = time.monotonic()
        r = ssh.run({"a": Command(("sh", "-c", script), timeout=1.0)})["a"]
        took = time.monotonic() - t0
    assert r.status == "timeout" and "1 s timeout" in r.detail
    assert took < 10
    time.sleep(3.5)
    assert not marker.exists(), "the remote grandchild survived the timeout"


def test_unknown_host_key_is_unreachable(sshd: Sshd, tmp_path: Path) -> None:
    other = tmp_path / "known_hosts"
    other.write_text(f"[127.0.0.1]:{sshd.port + 1} {sshd.host_pub}\n")
    with _launcher(sshd, ["a"], known=other) as ssh:
        r = ssh.run({"a": Command(("true",), timeout=10)})["a"]
    assert r.status == "unreachable"
    assert "not in known_hosts" in r.detail


def test_changed_host_key_is_unreachable(sshd: Sshd, tmp_path: Path) -> None:
    other = tmp_path / "known_hosts"
    # a different ed25519 key for the same address: a man in the middle
    other.write_text(f"[127.0.0.1]:{sshd.port} ssh-ed25519 "
                     "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
    with _launcher(sshd, ["a"], known=other) as ssh:
        r = ssh.run({"a": Command(("true",), timeout=10)})["a"]
    assert r.status == "unreachable" and "does not match" in r.detail


def test_closed_port_is_unreachable_and_others_still_run(sshd: Sshd) -> None:
    targets = {"good": Target("good", "127.0.0.1", sshd.port, sshd.user),
               "dead": Target("dead", "127.0.0.1", 1, sshd.user)}
    with SshLauncher(targets, SshSettings(str(sshd.key), str(sshd.known_hosts),
                                          connect_timeout=3)) as ssh:
        res = ssh.run({n: Command(("echo", "hi"), timeout=10) for n in targets})
    assert res["good"].status == "ok" and res["good"].stdout == "hi\n"
    assert res["dead"].status == "unreachable" and "cannot connect" in res["dead"].detail


def test_missing_known_hosts_is_bad_input(sshd: Sshd, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="known_hosts"):
        SshLauncher({}, SshSettings(str(sshd.key), str(tmp_path / "nope")))


@pytest.mark.parametrize("text", ["not a key\n",
                                  "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"
                                  "-----END OPENSSH PRIVATE KEY-----\n"])
def test_a_file_that_is_not_a_private_key_is_bad_input(tmp_path: Path, text: str) -> None:
    key = tmp_path / "id"
    key.write_text(text)
    known = tmp_path / "known_hosts"
    known.write_text("")
    with pytest.raises(InputError, match=r"access.ssh_key: .*not a private key"):
        SshLauncher({}, SshSettings(str(key), str(known)))

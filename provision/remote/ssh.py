"""Run a command on many nodes over SSH with paramiko.

- Host keys are verified against the spec's known_hosts (``RejectPolicy``):
  an unknown or changed key makes the node *unreachable*, never trusted.
- One connection per host, reused for every later command (a channel per
  command, no new handshake), from a thread pool sized to the host count up
  to a cap.
- Every command runs in a new session under ``setsid``; the remote shell
  prints the session's process-group id first, so on timeout a second
  channel kills the whole group (``kill -KILL -- -PGID``) and no remote
  grandchild keeps a GPU busy.
"""

from __future__ import annotations

import shlex
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import paramiko

from provision.errors import InputError
from provision.remote.base import Command, Result, Target, classify

DEFAULT_MAX_WORKERS = 64
#: concurrent channels on one connection (sshd allows 10 sessions by default)
PER_HOST_CHANNELS = 8
_PGID_TAG = "@@forge-pgid "
# sh prints its own pid (the new session's process-group id) on stderr, then
# becomes the program: the program keeps that pid and its children the group.
_WRAP = "echo \"" + _PGID_TAG + "$$\" >&2; exec \"$@\""


def remote_command(argv: tuple[str, ...] | list[str]) -> str:
    """The command line sent to sshd for ``argv`` (pure; every word quoted)."""
    return shlex.join(["setsid", "-w", "sh", "-c", _WRAP, "forge", *argv])


def split_pgid(stderr: str) -> tuple[int | None, str]:
    """Take the process-group line off the start of ``stderr``."""
    first, _, rest = stderr.partition("\n")
    if first.startswith(_PGID_TAG):
        try:
            return int(first[len(_PGID_TAG):]), rest
        except ValueError:
            return None, rest
    return None, stderr


@dataclass(frozen=True)
class SshSettings:
    key_file: str | None
    known_hosts: str
    connect_timeout: float = 10.0
    max_workers: int = DEFAULT_MAX_WORKERS


class _Unreachable(Exception):
    pass


class SshLauncher:
    """Fan a command out to nodes over SSH; see the module docstring."""

    name = "ssh"

    def __init__(self, targets: Mapping[str, Target], settings: SshSettings) -> None:
        if not Path(settings.known_hosts).is_file():
            raise InputError(f"access.known_hosts: {settings.known_hosts} does not exist",
                             hint="host keys are verified; add the nodes' keys to it")
        if settings.key_file and not Path(settings.key_file).is_file():
            raise InputError(f"access.ssh_key: {settings.key_file} does not exist")
        self.targets = dict(targets)
        self.settings = settings
        self._clients: dict[tuple[str, int, str], paramiko.SSHClient] = {}
        self._locks: dict[tuple[str, int, str], threading.Lock] = {}
        self._guard = threading.Lock()
        self._pkey: paramiko.PKey | None = None
        if settings.key_file:
            try:
                self._pkey = paramiko.PKey.from_path(settings.key_file)
            except (paramiko.SSHException, OSError, ValueError) as exc:
                # paramiko raises ValueError for a file that is not a private key at all
                raise InputError(f"access.ssh_key: {settings.key_file}: not a private key "
                                 f"forge can read ({exc})") from None

    # --- connections
    def _lock_for(self, key: tuple[str, int, str]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _client(self, t: Target) -> paramiko.SSHClient:
        key = (t.host, t.port, t.user)
        with self._lock_for(key):
            client = self._clients.get(key)
            transport = client.get_transport() if client else None
            if client is not None and transport is not None and transport.is_active():
                return client
            client = paramiko.SSHClient()
            try:
                client.load_host_keys(self.settings.known_hosts)
            except OSError as exc:
                raise _Unreachable(f"cannot read known_hosts: {exc}") from None
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
            try:
                client.connect(
                    t.host, port=t.port, username=t.user, pkey=self._pkey,
                    timeout=self.settings.connect_timeout,
                    banner_timeout=self.settings.connect_timeout,
                    auth_timeout=self.settings.connect_timeout,
                    allow_agent=False, look_for_keys=False)
            except paramiko.BadHostKeyException:
                client.close()
                raise _Unreachable(f"host key of {t.host}:{t.port} does not match "
                                   "known_hosts") from None
            except paramiko.AuthenticationException as exc:
                client.close()
                raise _Unreachable(f"authentication failed as {t.user}: {exc}") from None
            except paramiko.SSHException as exc:
                client.close()
                text = str(exc)
                if "not found in known_hosts" in text:
                    text = f"host key of {t.host}:{t.port} is not in known_hosts"
                raise _Unreachable(text) from None
            except (TimeoutError, OSError) as exc:
                client.close()
                raise _Unreachable(f"cannot connect to {t.host}:{t.port}: "
                                   f"{getattr(exc, 'strerror', None) or exc}") from None
            self._clients[key] = client
            return client

    # --- one command
    def run_one(self, node: str, cmd: Command) -> Result:
        target = self.targets.get(node)
        if target is None:
            return Result(node, cmd.argv, "unreachable", None, "", "", 0.0,
                          "no SSH address for this node")
        start = time.monotonic()
        try:
            client = self._client(target)
            return self._exec(node, client, cmd, start)
        except _Unreachable as exc:
            return Result(node, cmd.argv, "unreachable", None, "", "",
                          time.monotonic() - start, str(exc))
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self._forget(target)
            return Result(node, cmd.argv, "unreachable", None, "", "",
                          time.monotonic() - start, f"connection lost: {exc}")

    def _exec(self, node: str, client: paramiko.SSHClient, cmd: Command,
              start: float) -> Result:
        transport = client.get_transport()
        if transport is None:
            raise _Unreachable("no transport")
        chan = transport.open_session(timeout=self.settings.connect_timeout)
        chan.exec_command(remote_command(cmd.argv))
        if cmd.stdin is not None:
            chan.sendall(cmd.stdin.encode())
        chan.shutdown_write()
        out, err = bytearray(), bytearray()
        deadline = start + cmd.timeout
        timed_out = False
        while True:
            drained = False
            while chan.recv_ready():
                out += chan.recv(65536)
                drained = True
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
                drained = True
            if chan.exit_status_ready() and not chan.recv_ready() \
                    and not chan.recv_stderr_ready():
                break
            if time.monotonic() >= deadline:
                timed_out = True
                break
            if not drained:
                time.sleep(0.005)
        stderr_text = err.decode(errors="replace")
        pgid, stderr_text = split_pgid(stderr_text)
        if timed_out:
            self._kill_group(transport, pgid)
            chan.close()
            return classify(node, cmd.argv, 124, out.decode(errors="replace"), stderr_text,
                            time.monotonic() - start, True, cmd.timeout)
        rc = chan.recv_exit_status()
        chan.close()
        return classify(node, cmd.argv, rc, out.decode(errors="replace"), stderr_text,
                        time.monotonic() - start, False, cmd.timeout)

    def _kill_group(self, transport: paramiko.Transport, pgid: int | None) -> None:
        if pgid is None or pgid <= 1:
            return
        try:
            chan = transport.open_session(timeout=self.settings.connect_timeout)
            chan.exec_command(f"kill -KILL -- -{int(pgid)}")
            chan.recv_exit_status()
            chan.close()
        except (paramiko.SSHException, OSError, EOFError):
            pass

    def _forget(self, target: Target) -> None:
        key = (target.host, target.port, target.user)
        with self._guard:
            client = self._clients.pop(key, None)
        if client is not None:
            client.close()

    # --- fan-out
    def run(self, commands: Mapping[str, Command]) -> dict[str, Result]:
        if not commands:
            return {}
        workers = max(1, min(self.settings.max_workers, len(commands)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="forge-ssh") as pool:
            futures = {n: pool.submit(self.run_one, n, c) for n, c in commands.items()}
            return {n: f.result() for n, f in futures.items()}

    def run_many_on(self, node: str, commands: Mapping[str, Command]) -> dict[str, Result]:
        """Run several commands on one node at once (channels of one connection).

        Results are keyed like ``commands``; concurrency stays under sshd's
        default ``MaxSessions`` of 10.
        """
        if not commands:
            return {}
        workers = max(1, min(PER_HOST_CHANNELS, len(commands)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="forge-ssh1") as pool:
            futures = {k: pool.submit(self.run_one, node, c) for k, c in commands.items()}
            return {k: f.result() for k, f in futures.items()}

    def close(self) -> None:
        with self._guard:
            clients = list(self._clients.values())
            self._clients.clear()
        for c in clients:
            c.close()

    def __enter__(self) -> SshLauncher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

#!/usr/bin/env python3
"""Fan-out speed, side by side: forge's SSH launcher vs ClusterShell's clush vs ansible ad-hoc.

Starts N real sshd processes on 127.0.0.1 (one per port, a generated host
key, a generated client key), then runs the same command on all of them with
each tool, cold (fresh connections every repetition), every tool as its own
process (forge's launcher too, so each pays its interpreter start), in an order
that rotates every round, and prints median wall times, the client processes'
CPU seconds and the medians of the per-round ratios. Goal: forge no slower than
clush, >= 5x faster than ``ansible -m command``.

    .venv/bin/python benchmarks/fanout_bench.py [--nodes 32] [--reps 5] [--command 'uname -n']
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
VENV_BIN = Path(sys.executable).parent


def free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, for printing beside figures from a shared machine."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def wait_port(port: int, timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not free(port):
            return
        time.sleep(0.05)
    raise SystemExit(f"sshd on port {port} did not start")


def start_sshds(d: Path, ports: list[int]) -> list[int]:
    """Start one sshd per port, outside this process's tree; returns their process groups.

    Each sshd is started by a shell that exits at once, so the sshd (and every session
    and command it forks later) is adopted by init, not by this process: a walk of this
    process's descendants (control_host_bench's memory figure) sees the controller only,
    never the nodes' side.
    """
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host")],
                   check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "client")],
                   check=True)
    shutil.copy(d / "client.pub", d / "authorized_keys")
    (d / "sshd_config").write_text(f"""ListenAddress 127.0.0.1
HostKey {d}/host
AuthorizedKeysFile {d}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 200
MaxSessions 20
PidFile none
LogLevel ERROR
""")
    Path("/run/sshd").mkdir(exist_ok=True)
    host_pub = (d / "host.pub").read_text().split()[:2]
    user = os.environ.get("USER", "root")
    (d / "known_hosts").write_text("".join(
        f"[127.0.0.1]:{p} {host_pub[0]} {host_pub[1]}\n" for p in ports))
    (d / "ssh_config").write_text("".join(
        f"Host n{i:02d}\n  HostName 127.0.0.1\n  Port {p}\n  User {user}\n"
        f"  IdentityFile {d}/client\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {d}/known_hosts\n  StrictHostKeyChecking yes\n"
        for i, p in enumerate(ports, 1)))
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    groups = []
    for p in ports:
        launcher = subprocess.Popen(
            ["sh", "-c", 'exec 2>/dev/null; "$0" -D -e -f "$1" -p "$2" & exit 0',
             sshd, str(d / "sshd_config"), str(p)], start_new_session=True)
        launcher.wait(10)
        groups.append(launcher.pid)  # the sshd keeps the launcher's process group
    for p in ports:
        wait_port(p)
    return groups


def stop_sshds(groups: list[int], d: Path) -> None:
    for g in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(g, signal.SIGTERM)
    end = time.monotonic() + 10
    while time.monotonic() < end and any(_alive(g) for g in groups):
        time.sleep(0.05)
    shutil.rmtree(d, ignore_errors=True)


def _alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + sys) of the child processes ``fn`` waited for."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    fn()
    wall = time.perf_counter() - t
    ru2 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, ru2.ru_utime + ru2.ru_stime - ru.ru_utime - ru.ru_stime


def run_forge_process(d: Path, ports: list[int], command: list[str]) -> None:
    """forge's launcher in its own Python process, started and timed like clush and ansible."""
    out = subprocess.run([sys.executable, __file__, "--child", str(d), "--command",
                          " ".join(command), *map(str, ports)],
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise SystemExit(f"forge failed ({out.returncode}): {out.stderr[-300:]}")


def run_forge(d: Path, ports: list[int], command: list[str]) -> None:
    from provision.remote.base import Command, Target
    from provision.remote.ssh import SshLauncher, SshSettings

    targets = {f"n{i:02d}": Target(f"n{i:02d}", "127.0.0.1", p, os.environ.get("USER", "root"))
               for i, p in enumerate(ports, 1)}
    with SshLauncher(targets, SshSettings(key_file=str(d / "client"),
                                          known_hosts=str(d / "known_hosts"))) as ssh:
        res = ssh.run({n: Command(tuple(command), 30) for n in targets})
    bad = [n for n, r in res.items() if r.status != "ok"]
    if bad:
        raise SystemExit(f"forge: {len(bad)} nodes failed: {res[bad[0]].detail}")


def run_clush(d: Path, n: int, command: list[str]) -> None:
    clush = str(VENV_BIN / "clush")
    out = subprocess.run([clush, "-f", "64", "-w", f"n[01-{n:02d}]", "-o", f"-F {d}/ssh_config",
                          "-S", "-N", *command], capture_output=True, text=True, timeout=120)
    if out.returncode != 0 or len(out.stdout.splitlines()) != n:
        raise SystemExit(f"clush failed ({out.returncode}): {out.stderr[-300:]}")


def run_ansible(d: Path, n: int, command: list[str], rep: int) -> None:
    env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="True", ANSIBLE_FORKS=str(n),
               ANSIBLE_SSH_ARGS=f"-F {d}/ssh_config -o ControlMaster=auto "
                                "-o ControlPersist=60s",
               ANSIBLE_CONTROL_PATH_DIR=str(d / f"cp{rep}"),  # cold: no reused masters
               ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_GATHERING="explicit",
               ANSIBLE_LOCAL_TEMP=str(d / "ansible-tmp"), ANSIBLE_NOCOLOR="1",
               PATH=f"{VENV_BIN}:{os.environ['PATH']}")
    inv = d / "inventory.ini"
    inv.write_text("[nodes]\n" + "".join(f"n{i:02d}\n" for i in range(1, n + 1)))
    out = subprocess.run([str(VENV_BIN / "ansible"), "nodes", "-i", str(inv), "-m", "command",
                          "-a", " ".join(command), "-o"], capture_output=True, text=True,
                         env=env, timeout=600)
    ok = sum(1 for ln in out.stdout.splitlines() if "| CHANGED |" in ln or "| SUCCESS |" in ln)
    if out.returncode != 0 or ok != n:
        raise SystemExit(f"ansible failed ({out.returncode}, {ok}/{n} ok): "
                         f"{(out.stdout + out.stderr)[-400:]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=32)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--port-base", type=int, default=24000)
    ap.add_argument("--command", default="uname -n")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # forge's side, as a process
    ap.add_argument("ports", type=int, nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        run_forge(args.child, args.ports, args.command.split())
        return 0
    ports = [args.port_base + i for i in range(1, args.nodes + 1)]
    busy = [p for p in ports if not free(p)]
    if busy:
        raise SystemExit(f"ports in use: {busy[:5]}; pass --port-base")
    command = args.command.split()
    d = Path(tempfile.mkdtemp(prefix="forge-fanout-"))
    procs = start_sshds(d, ports)
    try:
        tools = {"forge": lambda rep: run_forge_process(d, ports, command),
                 "clush": lambda rep: run_clush(d, args.nodes, command),
                 "ansible": lambda rep: run_ansible(d, args.nodes, command, rep)}
        wall: dict[str, list[float]] = {k: [] for k in tools}
        cpu: dict[str, list[float]] = {k: [] for k in tools}
        ratio: dict[str, list[float]] = {"forge/clush": [], "ansible/forge": []}
        for tool in tools.values():  # warm the page cache and imports once, every tool alike
            tool(-1)
        order = list(tools)
        for rep in range(args.reps):
            for k in order:  # every tool a process; the start order rotates each round
                w, c = timed(functools.partial(tools[k], rep))
                wall[k].append(w)
                cpu[k].append(c)
            ratio["forge/clush"].append(wall["forge"][-1] / wall["clush"][-1])
            ratio["ansible/forge"].append(wall["ansible"][-1] / wall["forge"][-1])
            order = order[1:] + order[:1]
        med = {k: statistics.median(v) for k, v in wall.items()}
        print(f"fan-out of {command!r} to {args.nodes} sshd endpoints on 127.0.0.1, "
              f"{args.reps} cold repetitions, order rotated, every tool a process, "
              f"{os.cpu_count()} CPUs, load average {load_average()}")
        for k, v in wall.items():
            print(f"  {k:<8} median {med[k]:7.3f} s wall (min {min(v):.3f}, max {max(v):.3f}),"
                  f" {statistics.median(cpu[k]):6.3f} s client CPU")
        print(f"  forge / clush   = {statistics.median(ratio['forge/clush']):.2f}"
              "  (median of per-round ratios; goal <= 1.00)")
        print(f"  ansible / forge = {statistics.median(ratio['ansible/forge']):.1f}x (goal >= 5x)")
        return 0
    finally:
        stop_sshds(procs, d)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Fan-out speed, side by side: forge's SSH launcher vs ClusterShell's clush vs ansible ad-hoc.

Starts N real sshd processes on 127.0.0.1 (one per port, a generated host
key, a generated client key), then runs the same command on all of them with
each tool, cold (fresh connections every repetition), and prints median wall
times and the ratios. Goal: forge no slower than clush, >= 5x faster than
``ansible -m command``.

    .venv/bin/python benchmarks/fanout_bench.py [--nodes 32] [--reps 5] [--command 'uname -n']
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
VENV_BIN = Path(sys.executable).parent


def free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def wait_port(port: int, timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not free(port):
            return
        time.sleep(0.05)
    raise SystemExit(f"sshd on port {port} did not start")


def start_sshds(d: Path, ports: list[int]) -> list[subprocess.Popen[bytes]]:
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
    procs = [subprocess.Popen([sshd, "-D", "-e", "-f", str(d / "sshd_config"), "-p", str(p)],
                              stderr=subprocess.DEVNULL, start_new_session=True)
             for p in ports]
    for p in ports:
        wait_port(p)
    return procs


def stop_sshds(procs: list[subprocess.Popen[bytes]], d: Path) -> None:
    for p in procs:
        os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        p.wait(10)
    shutil.rmtree(d, ignore_errors=True)


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


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
    args = ap.parse_args()
    ports = [args.port_base + i for i in range(1, args.nodes + 1)]
    busy = [p for p in ports if not free(p)]
    if busy:
        raise SystemExit(f"ports in use: {busy[:5]}; pass --port-base")
    command = args.command.split()
    d = Path(tempfile.mkdtemp(prefix="forge-fanout-"))
    procs = start_sshds(d, ports)
    try:
        times: dict[str, list[float]] = {"forge": [], "clush": [], "ansible": []}
        run_forge(d, ports, command)        # warm the page cache and imports once
        run_clush(d, args.nodes, command)
        for rep in range(args.reps):
            times["forge"].append(timed(lambda: run_forge(d, ports, command)))
            times["clush"].append(timed(lambda: run_clush(d, args.nodes, command)))
            times["ansible"].append(timed(
                lambda rep=rep: run_ansible(d, args.nodes, command, rep)))
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"fan-out of {command!r} to {args.nodes} sshd endpoints on 127.0.0.1, "
              f"{args.reps} cold repetitions, {os.cpu_count()} CPUs")
        for k, v in times.items():
            print(f"  {k:<8} median {med[k]:7.3f} s   (min {min(v):.3f}, max {max(v):.3f})")
        print(f"  forge / clush   = {med['forge'] / med['clush']:.2f}  (goal <= 1.00)")
        print(f"  ansible / forge = {med['ansible'] / med['forge']:.1f}x (goal >= 5x)")
        return 0
    finally:
            stop_sshds(procs, d)


if __name__ == "__main__":
    sys.exit(main())

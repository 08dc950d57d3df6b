"""Slurm: read node state with ``sinfo``, drain and resume with ``scontrol`` (pure argv).

Commands go through a :class:`CommandRunner`: locally (the node-local health
check, or a sweep run on the controller) that is :func:`local_runner` over
:mod:`provision.proc`; from a workstation it is the SSH launcher pointed at
the controller.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence

from provision import proc
from provision.actions.policy import NodeState
from provision.errors import DeployError
from provision.remote.base import Command, Launcher

CommandRunner = Callable[[Sequence[str], float], proc.Completed]
TIMEOUT_S = 30.0
SINFO_FORMAT = "%N|%T|%E"


def sinfo_argv(nodes: Sequence[str]) -> list[str]:
    argv = ["sinfo", "-h", "-N", "-o", SINFO_FORMAT]
    if nodes:
        if len(nodes) == 1:
            names = nodes[0]
        else:
            from provision.nodes import fold  # ClusterShell: not needed on a node for one name

            names = fold(nodes)
        argv[1:1] = ["-n", names]
    return argv


def show_node_argv(node: str) -> list[str]:
    return ["scontrol", "show", "node", "-o", node]


def drain_argv(node: str, reason: str) -> list[str]:
    return ["scontrol", "update", f"nodename={node}", "state=drain", f"reason={reason}"]


def resume_argv(node: str) -> list[str]:
    return ["scontrol", "update", f"nodename={node}", "state=resume"]


def _drained(state: str) -> bool:
    s = state.lower().rstrip("*~#!%$@^-")
    return "drain" in s or s.startswith(("down", "fail", "maint"))


def parse_sinfo(text: str) -> dict[str, NodeState]:
    """``sinfo -h -N -o '%N|%T|%E'`` -> state per node (a node in two partitions counted once)."""
    out: dict[str, NodeState] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split("|", 2)
        if len(parts) != 3:
            continue
        name, state, reason = (p.strip() for p in parts)
        reason_or_none = None if reason in ("", "none", "(null)") else reason
        out.setdefault(name, NodeState(name, state, _drained(state), reason_or_none))
    return out


def parse_show_node(text: str) -> NodeState:
    """One line of ``scontrol show node -o``: ``State=IDLE+DRAIN ... Reason=x [root@time]``."""
    name = re.search(r"\bNodeName=(\S+)", text)
    state = re.search(r"\bState=(\S+)", text)
    if not name or not state:
        raise ValueError(f"not scontrol show node output: {text[:80]!r}")
    reason = None
    if m := re.search(r"\bReason=(.*?)(?: \[[^\]]*@[^\]]*\])?(?: \w+=|$)", text):
        reason = m.group(1).strip() or None
    st = state.group(1)
    drained = "DRAIN" in st or st.startswith(("DOWN", "FAIL", "MAINT"))
    return NodeState(name.group(1), st.lower(), drained, reason)


def local_runner(argv: Sequence[str], timeout: float) -> proc.Completed:
    try:
        return proc.run(argv, timeout=timeout)
    except proc.ToolMissing as exc:
        raise DeployError(f"{exc}", hint="run the sweep where Slurm's client tools are "
                          "installed (the controller) or pass --controller") from None


def remote_runner(launcher: Launcher, node: str) -> CommandRunner:
    """A command runner that runs argv on ``node`` through a launcher (the controller or
    submit host over SSH)."""

    def run(argv: Sequence[str], timeout: float) -> proc.Completed:
        res = launcher.run({node: Command(tuple(argv), timeout)})[node]
        rc = res.returncode if res.returncode is not None else (
            124 if res.status == "timeout" else 255)
        err = res.stderr or (res.detail if not res.ran else "")
        return proc.Completed(tuple(argv), rc, res.stdout, err, res.status == "timeout",
                              res.duration_s)
    return run


class SlurmScheduler:
    """Read and change Slurm node state through one command runner."""

    name = "slurm"

    def __init__(self, runner: CommandRunner = local_runner, *, timeout: float = TIMEOUT_S):
        self.runner = runner
        self.timeout = timeout

    def _run(self, argv: list[str]) -> proc.Completed:
        done = self.runner(argv, self.timeout)
        if not done.ok:
            why = "timed out" if done.timed_out else f"exit {done.returncode}"
            raise DeployError(f"{shlex.join(argv)}: {why}: "
                              f"{(done.stderr or done.stdout).strip()[:200]}")
        return done

    def states(self, nodes: Sequence[str]) -> dict[str, NodeState]:
        return parse_sinfo(self._run(sinfo_argv(nodes)).stdout)

    def drain(self, node: str, reason: str) -> None:
        self._run(drain_argv(node, reason))

    def resume(self, node: str) -> None:
        # re-read right before acting: an operator may have re-drained it meanwhile
        now = self.states([node]).get(node)
        if now is None or not now.forge_owned:
            raise DeployError(f"{node}: drain is no longer forge's "
                              f"({now.reason if now else 'node gone'}): not resuming")
        self._run(resume_argv(node))

    def describe(self, node: str, action: str, reason: str) -> str:
        argv = drain_argv(node, reason) if action == "drain" else resume_argv(node)
        return shlex.join(argv)

"""Fan the probe script out to many nodes through the SSH launcher.

Concurrency is bounded by the launcher's worker cap; each node has its own
timeout (the sum of its probes' timeouts plus a margin) and each probe its
own ``timeout`` inside the script. A node that refuses the connection, times
out, or disappears mid-run comes back as ``unreachable`` with whatever it had
already printed: one bad node costs its own timeout, never the others'.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from provision.remote.base import Command, Launcher, Result, Target
from provision.sweep import probes as P
from provision.sweep.collect import from_output, node_timeout
from provision.sweep.expect import NodeExpectation
from provision.sweep.result import NodeResult


def commands(exps: Mapping[str, NodeExpectation], profile: str, *,
             node_timeout_s: float | None = None) -> dict[str, tuple[Command, list[P.Probe]]]:
    """The probe script for each node, sent on stdin to ``sh -s`` (pure)."""
    out = {}
    for node, exp in exps.items():
        probes = P.selected(profile, exp)
        budget = node_timeout_s or node_timeout(probes)
        out[node] = (Command(("sh", "-s"), budget, stdin=P.script(probes, exp)), probes)
    return out


def judge(exp: NodeExpectation, probes: list[P.Probe], res: Result) -> NodeResult:
    if res.status == "unreachable":
        return from_output(exp, probes, res.stdout, connected=False,
                           why=f"unreachable: {res.detail}", seconds=res.duration_s)
    if res.status == "timeout":
        return from_output(exp, probes, res.stdout, connected=False,
                           why=f"timed out: {res.detail}", seconds=res.duration_s)
    if res.status == "not-installed":
        return from_output(exp, probes, res.stdout, connected=False,
                           why=f"no shell: {res.detail}", seconds=res.duration_s)
    # the script's last line is an echo: any exit but 0 means the session was cut
    connected = res.returncode == 0
    why = "" if connected else f"connection lost mid-run (exit {res.returncode})"
    return from_output(exp, probes, res.stdout, connected=connected, why=why,
                       seconds=res.duration_s)


def sweep(launcher: Launcher, exps: Mapping[str, NodeExpectation], profile: str, *,
          node_timeout_s: float | None = None,
          keep: Callable[[str, Result], None] | None = None) -> list[NodeResult]:
    """Each node's result; ``keep`` sees each node's raw probe output before it is judged."""
    plan = commands(exps, profile, node_timeout_s=node_timeout_s)
    start = time.monotonic()
    results = launcher.run({n: c for n, (c, _) in plan.items()})
    out = []
    for node, (cmd, probes) in plan.items():
        res = results.get(node) or Result(node, cmd.argv, "unreachable", None, "", "",
                                          time.monotonic() - start, "no result from launcher")
        if keep is not None:
            keep(node, res)
        out.append(judge(exps[node], probes, res))
    return out


def targets(site_nodes: list[Any], user: str) -> dict[str, Target]:
    return {n.name: Target(n.name, n.ssh_host, n.ssh_port, user) for n in site_nodes}


def resolve(base: Path, path: str | None) -> str | None:
    if not path:
        return None
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())

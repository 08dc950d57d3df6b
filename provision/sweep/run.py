"""One sweep end to end: collect (fan-out or local) -> judge -> history -> actions.

Order matters for trust: the results are written to the history store
*before* any action, so a failed ``scontrol`` never loses what was measured,
and the actions read the streak counters the store keeps.
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provision.actions.apply import ActionResult, Scheduler, apply
from provision.actions.policy import PolicyConfig
from provision.history.store import HistoryStore, RunInfo, default_db
from provision.sweep.result import NodeResult, SweepResult

if TYPE_CHECKING:
    from provision.remote.ssh import SshLauncher
    from provision.spec.model import Site
    from provision.sweep.expect import NodeExpectation



@dataclass(frozen=True)
class SweepOptions:
    profile: str = "quick"
    nodes: str | None = None
    drain: bool = False
    dry_run: bool = False
    db: Path | None = None
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    max_workers: int = 64
    node_timeout_s: float | None = None
    controller: str | None = None          # node to run scontrol on; "local" = here


def new_run_id(prefix: str = "sweep") -> str:
    return f"{prefix}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{secrets.token_hex(2)}"


def launcher_for(site: Site, max_workers: int) -> SshLauncher:
    from provision.remote.ssh import SshLauncher, SshSettings
    from provision.sweep.fanout import resolve, targets

    key = resolve(site.base_dir, site.access.ssh_key)
    known = resolve(site.base_dir, site.access.known_hosts) or str(
        Path("~/.ssh/known_hosts").expanduser())
    return SshLauncher(targets(list(site.nodes), site.access.user),
                       SshSettings(key_file=key, known_hosts=known, max_workers=max_workers))


def sweep_site(site: Site, opts: SweepOptions, *, launcher: SshLauncher | None = None,
               scheduler: Scheduler | None = None) -> SweepResult:
    """Fan-out sweep of the spec's nodes (``opts.nodes`` narrows them)."""
    from provision.expectations import plan_site
    from provision.sweep import fanout
    from provision.sweep.expect import for_node

    nodes = site.select(opts.nodes)
    plan = plan_site(site)
    exps = {n.name: for_node(site, n, plan) for n in nodes}
    run_id = new_run_id()
    started = time.time()
    own = launcher is None
    ssh = launcher or launcher_for(site, opts.max_workers)
    try:
        results = fanout.sweep(ssh, exps, opts.profile, node_timeout_s=opts.node_timeout_s)
        result = SweepResult(run_id, opts.profile, started, time.time(), tuple(results))
        if opts.drain or opts.dry_run:
            sched = scheduler or scheduler_for(site, opts, ssh)
            result = finish(result, opts, sched, kind="sweep")
        else:
            result = finish(result, opts, None, kind="sweep")
    finally:
        if own:
            ssh.close()
    return result


def finish(result: SweepResult, opts: SweepOptions, scheduler: Scheduler | None, *,
           kind: str) -> SweepResult:
    """Store the result, then (opt-in) act on it; returns the result with its actions."""
    db = opts.db or default_db()
    with HistoryStore(db) as store:
        store.record(_run_info(result, kind), result.records)
        if scheduler is None:
            return result
        acts: list[ActionResult] = apply(
            [n.health() for n in result.nodes], scheduler, store, opts.policy, result.run_id,
            dry_run=opts.dry_run or not opts.drain)
    return replace(result, actions=tuple(a.to_dict() for a in acts))


def _run_info(result: SweepResult, kind: str) -> RunInfo:
    from provision.sweep.result import Status

    names = [n.node for n in result.nodes]
    statuses: dict[Status, int] = {}
    for n in result.nodes:
        statuses[n.status] = statuses.get(n.status, 0) + 1
    return RunInfo(result.run_id, result.started, kind=kind, origin=socket.gethostname(),
                   profile=result.profile, nodes=",".join(names) if len(names) < 4 else
                   _fold(names), status=" ".join(f"{k}={v}" for k, v in sorted(statuses.items())),
                   finished=result.finished)


def _fold(names: Sequence[str]) -> str:
    try:
        from provision.nodes import fold

        return fold(names)
    except ImportError:
        return ",".join(names)


def scheduler_for(site: Site, opts: SweepOptions, ssh: SshLauncher | None) -> Scheduler:
    if site.stack.scheduler == "kubernetes":
        from provision.actions.kubernetes import KubernetesScheduler

        return KubernetesScheduler(kube_api())
    from provision.actions.slurm import SlurmScheduler, local_runner

    where = opts.controller
    if where is None:
        ctl = site.with_role("controller")
        where = ctl[0].name if ctl else "local"
    if where == "local" or ssh is None:
        return SlurmScheduler(local_runner)
    return SlurmScheduler(remote_runner(ssh, where))


def remote_runner(ssh: SshLauncher, node: str) -> Any:
    """A Slurm command runner that runs argv on ``node`` through the SSH launcher."""
    from provision import proc
    from provision.remote.base import Command

    def run(argv: Sequence[str], timeout: float) -> proc.Completed:
        res = ssh.run_one(node, Command(tuple(argv), timeout))
        rc = res.returncode if res.returncode is not None else (
            124 if res.status == "timeout" else 255)
        err = res.stderr or (res.detail if not res.ran else "")
        return proc.Completed(tuple(argv), rc, res.stdout, err, res.status == "timeout",
                              res.duration_s)
    return run


def kube_api() -> Any:
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.CoreV1Api()


def local_sweep(exp: NodeExpectation, opts: SweepOptions,
                scheduler: Scheduler | None = None) -> SweepResult:
    """``forge sweep --local``: this node's probes, stored and (opt-in) acted on here."""
    from provision.sweep.collect import run_local

    run_id = new_run_id("health")
    started = time.time()
    node: NodeResult = run_local(exp, opts.profile)
    result = SweepResult(run_id, opts.profile, started, time.time(), (node,))
    if opts.drain or opts.dry_run:
        if scheduler is None:
            from provision.actions.slurm import SlurmScheduler

            scheduler = SlurmScheduler()
        return finish(result, opts, scheduler, kind="local")
    if opts.db is not None:
        return finish(result, opts, None, kind="local")
    return result

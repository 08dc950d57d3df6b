"""One sweep end to end: collect (fan-out or local) -> judge -> history -> actions.

Order matters for trust: the results are written to the history store
*before* any action, so a failed ``scontrol`` never loses what was measured,
and the actions read the streak counters the store keeps.

With ``SweepOptions.run_dir`` (the CLI's default for fan-out sweeps) the sweep
also keeps a run directory (:mod:`provision.runs`): ``raw/<node>.out|.err|.rc|.json``
(each node's probe output as it came), ``measurements.jsonl`` (``.parquet`` or
``.arrow`` with ``--table``), ``verdict.json``,
``actions.json`` (drain/resume, each with the run id the history store keeps)
and ``forge-run.json``; its name is the run id, so a drain traces back to the
bytes that caused it. Only the newest ``keep_runs`` sweep run directories stay.
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provision.actions.apply import ActionResult, Scheduler, apply
from provision.actions.policy import PolicyConfig
from provision.history.store import HistoryStore, RunInfo, default_db
from provision.measurement import run_file
from provision.remote.base import Result
from provision.runs import Run, prune, runs_root
from provision.sweep.counters import with_increases
from provision.sweep.result import NodeResult, SweepResult

if TYPE_CHECKING:
    from provision.remote.ssh import SshLauncher
    from provision.spec.model import Site
    from provision.sweep.expect import NodeExpectation

#: sweep run directories kept by default: 15-minute sweeps for two days
DEFAULT_KEEP = 200


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
    run_dir: bool = False                  # keep a run directory (see the module docstring)
    runs_dir: Path | None = None           # where (see sweep_runs_root)
    keep_runs: int = DEFAULT_KEEP          # sweep run directories kept, newest first
    table: str = "jsonl"                   # the run directory's measurements: TABLE_FORMATS


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
    run = start_run(opts, exps, site=site.name, source=Path(site.source))
    run_id = run.name if run is not None else new_run_id()
    started = time.time()
    own = launcher is None
    ssh = launcher or launcher_for(site, opts.max_workers)
    try:
        results = fanout.sweep(ssh, exps, opts.profile, node_timeout_s=opts.node_timeout_s,
                               keep=keeper(run))
        result = with_increases(SweepResult(run_id, opts.profile, started, time.time(),
                                            tuple(results)), opts.db or default_db())
        if opts.drain or opts.dry_run:
            sched = scheduler or scheduler_for(site, opts, ssh)
            result = finish(result, opts, sched, kind="sweep", run=run)
        else:
            result = finish(result, opts, None, kind="sweep", run=run)
    except BaseException as exc:
        if run is not None:
            run.abandon(exc)
        raise
    finally:
        if own:
            ssh.close()
    return result


def start_run(opts: SweepOptions, exps: Mapping[str, NodeExpectation], *,
              source: Path | None, keep_as: str = "spec.yaml", **fields: Any) -> Run | None:
    """The sweep's run directory (when ``opts.run_dir``): its input as given and the
    resolved plan (``plan.json``: each node's expectations and limits)."""
    if not opts.run_dir:
        return None
    run = Run.create("sweep", root=sweep_runs_root(opts), profile=opts.profile,
                     nodes=list(exps), drain=opts.drain, dry_run=opts.dry_run, **fields)
    if source is not None and source.is_file():
        run.keep_spec(source, keep_as)
    run.write_json("plan.json", {"schema_version": 1, "kind": "forge-sweep-plan",
                                 "profile": opts.profile,
                                 "nodes": {n: e.to_dict() for n, e in exps.items()}})
    return run


def sweep_runs_root(opts: SweepOptions) -> Path:
    """``--runs-dir``, else ``$FORGE_RUNS_DIR``, else ``runs/`` beside the history store."""
    return runs_root(opts.runs_dir, default=(opts.db or default_db()).parent / "runs")


def keeper(run: Run | None) -> Callable[[str, Result], None] | None:
    """Keeps each node's raw probe output in ``raw/<node>.*`` of the run directory."""
    if run is None:
        return None
    return lambda node, res: run.write_result("", node, res)


def _close_run(run: Run, result: SweepResult, opts: SweepOptions) -> None:
    run.write_json("actions.json", {"schema_version": 1, "run_id": result.run_id,
                                    "drain": opts.drain, "dry_run": opts.dry_run,
                                    "actions": list(result.actions)})
    run.finish(int(result.exit_code()), status=" ".join(
        f"{s}={len(result.by_status(s))}" for s in ("healthy", "failing", "unreachable")
        if result.by_status(s)) or "no nodes")
    prune(run.path.parent, "sweep", opts.keep_runs, spare=[run.path])


def finish(result: SweepResult, opts: SweepOptions, scheduler: Scheduler | None, *,
           kind: str, run: Run | None = None, store_history: bool = True) -> SweepResult:
    """Keep the verdict, store the result, then (opt-in) act on it; returns the result
    with its actions (kept in the run directory too)."""
    if run is not None:
        from provision.analyze.table import write_measurements  # pyarrow: only when written

        write_measurements(run.path, result.records, opts.table)
        run.write_json("verdict.json", verdict(result, opts.table))
    if store_history:
        db = opts.db or default_db()
        with HistoryStore(db) as store:
            store.record(_run_info(result, kind), result.records)
            if scheduler is not None:
                acts: list[ActionResult] = apply(
                    [n.health() for n in result.nodes], scheduler, store, opts.policy,
                    result.run_id, dry_run=opts.dry_run or not opts.drain)
                result = replace(result, actions=tuple(a.to_dict() for a in acts))
    if run is not None:
        _close_run(run, result, opts)
    return result


def verdict(result: SweepResult, table: str = "jsonl") -> dict[str, Any]:
    """Each node's status, reason and findings (the records are in measurements.<table>)."""
    doc = result.to_dict()
    for n in doc["nodes"]:
        n.pop("records", None)
    return {**doc, "kind": "forge-sweep-verdict", "measurements": run_file(table)}


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
        from provision.actions.kubernetes import KubernetesScheduler, kube_api

        return KubernetesScheduler(kube_api())
    from provision.actions.slurm import SlurmScheduler, local_runner, remote_runner

    where = opts.controller
    if where is None:
        ctl = site.with_role("controller")
        where = ctl[0].name if ctl else "local"
    if where == "local" or ssh is None:
        return SlurmScheduler(local_runner)
    return SlurmScheduler(remote_runner(ssh, where))


def local_sweep(exp: NodeExpectation, opts: SweepOptions,
                scheduler: Scheduler | None = None, *, source: Path | None = None,
                keep_as: str = "spec.yaml") -> SweepResult:
    """``forge sweep --local``: this node's probes, stored and (opt-in) acted on here."""
    from provision.sweep.collect import run_local

    run = start_run(opts, {exp.node: exp}, source=source, keep_as=keep_as, local=True)
    run_id = run.name if run is not None else new_run_id("health")
    started = time.time()
    try:
        node: NodeResult = run_local(exp, opts.profile, keep=keeper(run))
        result = SweepResult(run_id, opts.profile, started, time.time(), (node,))
        if opts.drain or opts.dry_run or opts.db is not None:  # the store it is recorded in
            result = with_increases(result, opts.db or default_db())
        if opts.drain or opts.dry_run:
            if scheduler is None:
                from provision.actions.slurm import SlurmScheduler

                scheduler = SlurmScheduler()
            return finish(result, opts, scheduler, kind="local", run=run)
        return finish(result, opts, None, kind="local", run=run,
                      store_history=opts.db is not None)
    except BaseException as exc:
        if run is not None:
            run.abandon(exc)
        raise

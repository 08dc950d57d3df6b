"""The check service: from "run these checks on these nodes" to a judged run directory.

It picks how the nodes are reached (``--via``: a launcher per way, in
:data:`LAUNCHERS`), validates each check's typed options, refuses disruptive
checks on nodes in service, creates the run directory (:mod:`provision.runs`),
keeps the spec as given and the resolved plan, runs the engine and records
the exit code. The CLI (``forge check``, ``forge requalify``) only parses
arguments, calls :func:`run_checks` and prints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provision.checks import options as opt
from provision.checks.base import DEFAULT_GPU_PYTHON, DEFAULT_PYTHON, Check
from provision.checks.engine import Engine, RunReport
from provision.errors import ForgeError, InputError
from provision.expectations import SitePlan, plan_site
from provision.remote.base import Launcher, Target
from provision.runs import SCHEMA_VERSION, Run
from provision.spec.model import Node, Site

if TYPE_CHECKING:
    from provision.remote.ssh import SshLauncher


@dataclass(frozen=True)
class CheckRequest:
    """What the operator asked for; ``options`` maps a check's name to its typed options."""

    checks: tuple[Check, ...]
    nodes: tuple[Node, ...]
    via: str = "ssh"
    submit_host: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    timeout_s: float | None = None
    reservation: str | None = None
    force: bool = False
    out: Path | None = None             # -o DIR: this run directory, else a new one
    runs_dir: Path | None = None        # --runs-dir: where new run directories go
    table: str = "jsonl"                # --table: the form of measurements.<suffix>


@dataclass
class Launchers:
    """Where node-scope commands run (``node``) and where cluster-scope ones are started."""

    node: Launcher
    cluster: Launcher
    cluster_node: str

    def close(self) -> None:
        self.node.close()
        if self.cluster is not self.node:
            self.cluster.close()


def resolve_options(checks: Iterable[Check], given: Mapping[str, Mapping[str, Any]]
                    ) -> dict[str, Any]:
    """Each check's typed options from ``given`` (check name -> option -> value, text or
    typed); a check or option that does not exist, or a bad value, is an InputError."""
    from provision.checks import registry

    for name in given:
        registry.get(name)
    return {c.name: opt.build(c.name, c.Options, given.get(c.name, {})) for c in checks}


def interpreters(site: Site) -> tuple[str, str]:
    """The nodes' interpreters: (standard-library programs, GPU workloads).

    A spec that names only ``acceptance.python`` (before ``gpu_python`` existed) meant
    it for every program, the GPU workloads included, and still does."""
    acc = site.acceptance_map
    python = str(acc.get("python") or DEFAULT_PYTHON)
    gpu = acc.get("gpu_python") or acc.get("python") or DEFAULT_GPU_PYTHON
    return python, str(gpu)


def ssh_launcher(site: Site, nodes: Iterable[Node]) -> SshLauncher:
    """An SSH launcher for ``nodes`` with the spec's access settings (host keys verified)."""
    from provision.remote.ssh import SshLauncher, SshSettings

    if not site.access.known_hosts:
        raise InputError("access.known_hosts is not set in the site spec",
                         hint="forge verifies host keys; name a known_hosts file")
    targets = {n.name: Target(n.name, n.ssh_host, n.ssh_port, site.access.user) for n in nodes}
    return SshLauncher(targets, SshSettings(site.access.ssh_key, site.access.known_hosts))


def submit_node(site: Site, name: str | None) -> Node:
    """Where srun/scontrol run: ``name``, else the first login node, else a controller."""
    if name:
        return site.node(name)
    for role in ("login", "controller"):
        found = site.with_role(role)
        if found:
            return found[0]
    raise InputError("no login or controller node in the spec to submit Slurm jobs from",
                     hint="pass --submit-host NODE")


def _local(site: Site, req: CheckRequest) -> Launchers:
    from provision.remote.local import LocalLauncher

    here = LocalLauncher()
    return Launchers(here, here, "localhost")


def _ssh(site: Site, req: CheckRequest) -> Launchers:
    ctl = site.with_role("controller") or list(req.nodes)
    launcher = ssh_launcher(site, {n.name: n for n in [*req.nodes, *ctl]}.values())
    return Launchers(launcher, launcher, ctl[0].name)


def _slurm(site: Site, req: CheckRequest) -> Launchers:
    from provision.remote.slurm import SlurmLauncher

    submit = submit_node(site, req.submit_host)
    cluster = ssh_launcher(site, [submit])
    # every GPU Slurm knows on the node: the profile's, or the lab's placeholders
    gpus = {n.name: n.profile.gpu.count if n.profile.gpu else n.profile.fake_gpus
            for n in site.nodes}
    return Launchers(SlurmLauncher(cluster, submit.name, gpus=gpus,
                                   reservation=req.reservation), cluster, submit.name)


#: how nodes are reached, by ``--via``
LAUNCHERS: dict[str, Callable[[Site, CheckRequest], Launchers]] = {
    "ssh": _ssh, "slurm": _slurm, "local": _local}


def launchers(site: Site, req: CheckRequest) -> Launchers:
    try:
        return LAUNCHERS[req.via](site, req)
    except KeyError:
        raise InputError(f"--via {req.via}: one of {', '.join(LAUNCHERS)}") from None


def run_checks(site: Site, req: CheckRequest, *, spec_path: Path | None = None,
               log: Callable[[str], None] = lambda _m: None) -> tuple[RunReport, Path]:
    """Guard, launch and judge ``req.checks`` on ``req.nodes``; the report and its run
    directory (whose ``forge-run.json`` carries the exit code)."""
    if not req.nodes:
        raise InputError("--nodes selects no node")
    plan = plan_site(site)
    options = {c.name: req.options.get(c.name) or c.Options() for c in req.checks}
    reach = launchers(site, req)
    try:
        if not req.force:
            guard(site, plan, req, reach)
        run = Run.create("check", root=req.runs_dir, out=req.out, site=site.name, via=req.via,
                         checks=[c.name for c in req.checks], nodes=_fold(req.nodes),
                         options={k: opt.as_dict(v) for k, v in options.items()},
                         timeout_s=req.timeout_s, reservation=req.reservation, force=req.force)
        keep_plan(run, site, plan, spec_path)
        python, gpu_python = interpreters(site)
        engine = Engine(site, plan, reach.node, cluster_launcher=reach.cluster,
                        cluster_node=reach.cluster_node, via=req.via, rundir=run,
                        python=python, gpu_python=gpu_python, options=options,
                        timeout_s=req.timeout_s, reservation=req.reservation,
                        table=req.table, log=log)
        try:
            report = engine.run(list(req.checks), [n.name for n in req.nodes])
        except BaseException as exc:
            run.abandon(exc)
            raise
    finally:
        reach.close()
    run.finish(int(report.exit_code), status="pass" if report.all_passed else "fail",
               counts=report.counts())
    return report, run.path


def keep_plan(run: Run, site: Site, plan: SitePlan, spec_path: Path | None) -> None:
    """``spec.yaml`` as the user wrote it, ``spec.json`` (presets applied) and
    ``plan.json`` (each node's thresholds: fraction x figure, with its source)."""
    from provision.inventory.render import spec_json

    source = spec_path or Path(site.source)
    if source.is_file():
        run.keep_spec(source)
    run.write_text("spec.json", spec_json(site) + "\n")
    run.write_json("plan.json", {
        "schema_version": SCHEMA_VERSION, "site": plan.site,
        "nodes": {p.node: {"profile": p.profile,
                           "thresholds": [t.to_dict() for t in p.thresholds]}
                  for p in plan.nodes}})


def _fold(nodes: Iterable[Node]) -> str:
    from provision.nodes import fold

    return fold([n.name for n in nodes])


def guard(site: Site, plan: SitePlan, req: CheckRequest, reach: Launchers) -> None:
    """Refuse disruptive checks on nodes in service (asks the scheduler where it runs)."""
    from provision.checks import ownership

    nodes = [n.name for n in req.nodes]
    plans = [plan.for_node(n) for n in nodes]
    # only checks that apply to these nodes disturb them (a GPU check skips a CPU node)
    applicable = [c for c in req.checks
                  if any(c.needs.unmet(site, [p] if c.scope == "node" else plans) is None
                         for p in plans)]
    if not ownership.disruptive(applicable):
        return
    runner = scheduler_runner(req.via, reach.cluster, reach.cluster_node)
    try:
        states = scheduler(site, runner).states(nodes)
    except ForgeError as exc:
        raise InputError(f"{', '.join(ownership.disruptive(applicable))}: cannot ask the "
                         f"scheduler whether the nodes are drained ({exc.message})",
                         hint="run where the scheduler answers, or pass --force for nodes "
                              "you know are idle") from None
    reserved: list[str] = []
    if req.reservation and site.stack.scheduler == "slurm":
        res = runner(["scontrol", "show", "reservation", req.reservation, "-o"], 30.0)
        if res.returncode != 0:
            raise InputError(f"--reservation {req.reservation}: "
                             f"{(res.stderr or res.stdout).strip()[:200]}")
        reserved = ownership.parse_reservation(res.stdout)
    ownership.guard(applicable, nodes, states, reserved)


def scheduler_runner(via: str, cluster: Launcher, cluster_node: str) -> Any:
    """A command runner on the host that can ask the scheduler: here (--via local) or
    the controller/submit host over SSH."""
    from provision.actions.slurm import local_runner, remote_runner

    if via == "local":
        return local_runner
    return remote_runner(cluster, cluster_node)


def scheduler(site: Site, runner: Any) -> Any:
    """The scheduler backend of the site (Slurm through ``runner``, or Kubernetes)."""
    if site.stack.scheduler == "kubernetes":
        from provision.actions.kubernetes import KubernetesScheduler, kube_api

        return KubernetesScheduler(kube_api())
    from provision.actions.slurm import SlurmScheduler

    return SlurmScheduler(runner)

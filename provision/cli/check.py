"""``forge check``: run acceptance checks against a site and write a run directory.

Exit codes: 0 every check passed, 1 a check failed (or could not judge), 2 bad
input, 4 a node could not be reached (over SSH, or through Slurm).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from provision.cli.output import console, emit_json
from provision.errors import ExitCode, InputError, combine
from provision.remote.base import Launcher
from provision.spec.model import Node, Site

if TYPE_CHECKING:
    from provision.checks.base import Check
    from provision.checks.engine import RunReport
    from provision.remote.ssh import SshLauncher


def _split(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for s in values for v in s.split(",") if v.strip()]


def _ssh(site: Site, nodes: list[Node]) -> SshLauncher:
    from provision.remote.base import Target
    from provision.remote.ssh import SshLauncher, SshSettings

    if not site.access.known_hosts:
        raise InputError("access.known_hosts is not set in the site spec",
                         hint="forge verifies host keys; name a known_hosts file")
    targets = {n.name: Target(n.name, n.ssh_host, n.ssh_port, site.access.user) for n in nodes}
    return SshLauncher(targets, SshSettings(site.access.ssh_key, site.access.known_hosts))


def _submit_node(site: Site, name: str | None) -> Node:
    if name:
        return site.node(name)
    for role in ("login", "controller"):
        found = site.with_role(role)
        if found:
            return found[0]
    raise InputError("no login or controller node in the spec to submit Slurm jobs from",
                     hint="pass --submit-host NODE")


@click.command("check")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--checks", "checks_", multiple=True, metavar="NAMES",
              help="Comma-separated check names (default: the spec's acceptance.checks).")
@click.option("--tags", multiple=True, metavar="T", help="Run the checks with these tags.")
@click.option("--nodes", metavar="NODESET", help="Only these nodes, e.g. gpu[001-004].")
@click.option("--via", type=click.Choice(["ssh", "slurm", "local"]), default="ssh",
              show_default=True, help="How to reach the nodes.")
@click.option("--submit-host", metavar="NODE",
              help="Node to run srun/scontrol on (default: first login, else controller).")
@click.option("-o", "--output", "out", type=click.Path(file_okay=False, path_type=Path),
              help="Run directory (default runs/check-<time>; never overwritten).")
@click.option("--timeout", type=float, help="Seconds before a check is killed (per node).")
@click.option("--burnin-seconds", type=float, help="SDC burn-in length (default from spec).")
@click.option("--collectives", help="NCCL collectives, e.g. all_reduce,alltoall.")
@click.option("--inject-flip", metavar="GPU:ITER",
              help="SDC: flip one output bit of GPU in iteration ITER (proves detection).")
@click.option("--reservation", metavar="NAME",
              help="Slurm reservation the nodes are held in for acceptance (steps run in it).")
@click.option("--force", is_flag=True,
              help="Run disruptive checks on nodes that are not drained or reserved.")
@click.option("--list", "list_", is_flag=True, help="List the catalog and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
def check(spec: Path | None, checks_: tuple[str, ...], tags: tuple[str, ...], nodes: str | None,
          via: str, submit_host: str | None, out: Path | None, timeout: float | None,
          burnin_seconds: float | None, collectives: str | None, inject_flip: str | None,
          reservation: str | None, force: bool, list_: bool, as_json: bool) -> None:
    """Run acceptance checks on the nodes of SPEC and write a run directory.

    \b
    Examples:
      forge check --list
      forge check site.yaml --checks conformance,tools,slurm
      forge check site.yaml --tags gpu --nodes gpu[001-004] --via slurm
      forge check site.yaml --checks sdc --burnin-seconds 600 -o runs/burnin-1

    Disruptive checks (burn-in, NCCL, GPUDirect, HBM, DCGM) refuse nodes that are
    not drained or in the --reservation, over SSH too, unless --force.
    """
    from provision.checks import registry
    from provision.spec import load_site

    if list_:
        for c in registry.CATALOG:
            click.echo(f"{c.name:15} [{','.join(c.tags)}] {c.description}")
        return
    if spec is None:
        raise click.UsageError("Missing argument 'SPEC' (only --list needs none).")
    site = load_site(spec)
    names, tag_list = _split(checks_), _split(tags)
    if not names and not tag_list:
        names = [str(c) for c in site.acceptance_map.get("checks", [])]
        if not names:
            raise InputError("no checks named", hint="pass --checks or --tags, or set "
                             "acceptance.checks in the spec")
    selected = registry.select(names, tag_list)
    chosen = site.select(nodes)
    if not chosen:
        raise InputError("--nodes selects no node")
    options = {"timeout": timeout, "burnin_seconds": burnin_seconds,
               "collectives": collectives, "inject_flip": inject_flip,
               "reservation": reservation}
    report, path = run_checks(site, selected, chosen, via=via, submit_host=submit_host,
                              out=out, options=options, force=force, quiet=as_json)
    verdict = report.to_dict()
    verdict["run_dir"] = str(path)
    if as_json:
        emit_json(verdict)
    else:
        _print(report, path)
    raise click.exceptions.Exit(int(combine([
        ExitCode.HOSTS_UNREACHABLE if report.unreachable else ExitCode.OK,
        ExitCode.OK if report.all_passed else ExitCode.CHECKS_FAILED])))


def run_checks(site: Site, selected: list[Check], chosen: list[Node], *, via: str,
               submit_host: str | None, out: Path | None, options: dict[str, Any],
               force: bool, quiet: bool) -> tuple[RunReport, Path]:
    """Guard, launch and judge ``selected`` on ``chosen``; the report and its run dir."""
    from provision.checks.engine import Engine
    from provision.checks.rundir import RunDir
    from provision.expectations import plan_site
    from provision.remote.local import LocalLauncher
    from provision.remote.slurm import SlurmLauncher

    plan = plan_site(site)
    reservation = options.get("reservation")
    launcher: Launcher
    cluster: Launcher
    if via == "local":
        launcher = cluster = LocalLauncher()
        cluster_node = "localhost"
    elif via == "ssh":
        ctl = site.with_role("controller") or chosen
        launcher = _ssh(site, list({n.name: n for n in [*chosen, *ctl]}.values()))
        cluster, cluster_node = launcher, ctl[0].name
    else:
        submit = _submit_node(site, submit_host)
        cluster = _ssh(site, [submit])
        cluster_node = submit.name
        # every GPU Slurm knows on the node: the profile's, or the lab's placeholders
        gpus = {n.name: n.profile.gpu.count if n.profile.gpu else n.profile.fake_gpus
                for n in site.nodes}
        launcher = SlurmLauncher(cluster, submit.name, gpus=gpus, reservation=reservation)
    try:
        if not force:
            _guard(site, selected, [n.name for n in chosen], via, cluster, cluster_node,
                   reservation)
        rundir = RunDir.create(out)
        err = console(stderr=True)
        python = str(site.acceptance_map.get("python", "python3"))
        engine = Engine(site, plan, launcher, cluster_launcher=cluster,
                        cluster_node=cluster_node, via=via, rundir=rundir, python=python,
                        options={k: v for k, v in options.items() if v is not None},
                        log=lambda m: err.print(m) if not quiet else None)
        report = engine.run(selected, [n.name for n in chosen])
    finally:
        launcher.close()
        cluster.close()
    return report, rundir.path


def _guard(site: Site, selected: list[Check], nodes: list[str], via: str, cluster: Launcher,
           cluster_node: str, reservation: str | None) -> None:
    """Refuse disruptive checks on nodes in service (asks the scheduler where it runs)."""
    from provision.checks import ownership
    from provision.expectations import plan_site

    plans = [plan_site(site).for_node(n) for n in nodes]
    # only checks that apply to these nodes disturb them (a GPU check skips a CPU node)
    applicable = [c for c in selected
                  if any(c.needs.unmet(site, [p] if c.scope == "node" else plans) is None
                         for p in plans)]
    if not ownership.disruptive(applicable):
        return
    from provision.errors import ForgeError

    runner = scheduler_runner(site, via, cluster, cluster_node)
    try:
        states = _scheduler(site, runner).states(nodes)
    except ForgeError as exc:
        raise InputError(f"{', '.join(ownership.disruptive(applicable))}: cannot ask the "
                         f"scheduler whether the nodes are drained ({exc.message})",
                         hint="run where the scheduler answers, or pass --force for nodes "
                              "you know are idle") from None
    reserved: list[str] = []
    if reservation and site.stack.scheduler == "slurm":
        res = runner(["scontrol", "show", "reservation", reservation, "-o"], 30.0)
        if res.returncode != 0:
            raise InputError(f"--reservation {reservation}: "
                             f"{(res.stderr or res.stdout).strip()[:200]}")
        reserved = ownership.parse_reservation(res.stdout)
    ownership.guard(applicable, nodes, states, reserved)


def scheduler_runner(site: Site, via: str, cluster: Launcher, cluster_node: str) -> Any:
    """A command runner on the host that can ask the scheduler: here (--via local) or
    the controller/submit host over SSH."""
    from provision.actions.slurm import local_runner
    from provision.sweep.run import remote_runner

    if via == "local":
        return local_runner
    return remote_runner(cluster, cluster_node)  # type: ignore[arg-type]


def _scheduler(site: Site, runner: Any) -> Any:
    if site.stack.scheduler == "kubernetes":
        from provision.actions.kubernetes import KubernetesScheduler
        from provision.sweep.run import kube_api

        return KubernetesScheduler(kube_api())
    from provision.actions.slurm import SlurmScheduler

    return SlurmScheduler(runner)


def _print(report: object, path: Path) -> None:
    from provision.checks.engine import RunReport
    from provision.nodes import group_by_text

    assert isinstance(report, RunReport)
    out = console()
    for o in report.outcomes:
        if o.skipped:
            out.print(f"{o.check:15} skipped: {o.skipped}")
            continue
        texts = {k: s + (f": {o.reasons[k]}" if o.reasons.get(k) else "")
                 for k, s in o.status.items()}
        try:
            groups = group_by_text(texts)
        except Exception:  # pair keys are not node names
            groups = sorted(texts.items())
        for ns, text in groups:
            out.print(f"{o.check:15} {ns}: {text}")
    counts = ", ".join(f"{n} {s}" for s, n in sorted(report.counts().items()))
    out.print(f"{len(report.records)} measurements ({counts}) in {report.seconds:.1f} s")
    out.print(f"run directory: {path}")

"""``forge check``: run acceptance checks against a site and write a run directory.

Exit codes: 0 every check passed, 1 a check failed (or could not judge), 2 bad
input, 4 a node could not be reached (over SSH, or through Slurm).
"""

from __future__ import annotations

from pathlib import Path

import click

from provision.cli.output import console, emit_json
from provision.errors import ExitCode, InputError, combine
from provision.remote.base import Launcher
from provision.spec.model import Node, Site


def _split(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for s in values for v in s.split(",") if v.strip()]


def _ssh(site: Site, nodes: list[Node]) -> Launcher:
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
@click.option("--list", "list_", is_flag=True, help="List the catalog and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
def check(spec: Path | None, checks_: tuple[str, ...], tags: tuple[str, ...], nodes: str | None,
          via: str, submit_host: str | None, out: Path | None, timeout: float | None,
          burnin_seconds: float | None, collectives: str | None, inject_flip: str | None,
          list_: bool, as_json: bool) -> None:
    """Run acceptance checks on the nodes of SPEC and write a run directory.

    \b
    Examples:
      forge check --list
      forge check site.yaml --checks conformance,tools,slurm
      forge check site.yaml --tags gpu --nodes gpu[001-004] --via slurm
      forge check site.yaml --checks sdc --burnin-seconds 600 -o runs/burnin-1
    """
    from provision.checks import registry
    from provision.checks.engine import Engine
    from provision.checks.rundir import RunDir
    from provision.expectations import plan_site
    from provision.remote.local import LocalLauncher
    from provision.remote.slurm import SlurmLauncher
    from provision.spec import load_site

    if list_:
        for c in registry.CATALOG:
            click.echo(f"{c.name:15} [{','.join(c.tags)}] {c.description}")
        return
    if spec is None:
        raise click.UsageError("Missing argument 'SPEC' (only --list needs none).")
    site = load_site(spec)
    plan = plan_site(site)
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
               "collectives": collectives, "inject_flip": inject_flip}
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
        launcher = SlurmLauncher(cluster, submit.name)
    rundir = RunDir.create(out)
    err = console(stderr=True)
    python = str(site.acceptance_map.get("python", "python3"))
    engine = Engine(site, plan, launcher, cluster_launcher=cluster,
                    cluster_node=cluster_node, via=via, rundir=rundir, python=python,
                    options={k: v for k, v in options.items() if v is not None},
                    log=lambda m: err.print(m) if not as_json else None)
    try:
        report = engine.run(selected, [n.name for n in chosen])
    finally:
        launcher.close()
        cluster.close()
    verdict = report.to_dict()
    verdict["run_dir"] = str(rundir.path)
    if as_json:
        emit_json(verdict)
    else:
        _print(report, rundir.path)
    raise click.exceptions.Exit(int(combine([
        ExitCode.HOSTS_UNREACHABLE if report.unreachable else ExitCode.OK,
        ExitCode.OK if report.all_passed else ExitCode.CHECKS_FAILED])))


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

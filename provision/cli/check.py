"""``forge check``: run acceptance checks against a site and write a run directory.

Exit codes: 0 every check passed, 1 a check failed (or could not judge), 2 bad
input, 4 a node could not be reached (over SSH, or through Slurm).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from provision.cli.output import console, emit_json, table_option
from provision.errors import InputError

#: ``--via`` choices (the check service has a launcher for each)
VIAS = ("ssh", "slurm", "local")


def _split(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for s in values for v in s.split(",") if v.strip()]


def _ssh(site: Any, nodes: list[Any]) -> Any:
    """An SSH launcher for ``nodes`` (kept for callers of the old name)."""
    from provision.checks.service import ssh_launcher

    return ssh_launcher(site, nodes)


def shortcut_options(burnin_seconds: float | None = None, collectives: str | None = None,
                     inject_flip: str | None = None) -> dict[str, dict[str, Any]]:
    """The ``--burnin-seconds``, ``--collectives`` and ``--inject-flip`` flags as the
    check options they set (``--option sdc.burnin_seconds=...`` and so on)."""
    given: dict[str, dict[str, Any]] = {}
    for check, name, value in (("sdc", "burnin_seconds", burnin_seconds),
                               ("sdc", "inject_flip", inject_flip),
                               ("nccl", "collectives", collectives),
                               ("nccl-multinode", "collectives", collectives)):
        if value is not None:
            given.setdefault(check, {})[name] = value
    return given


@click.command("check")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--checks", "checks_", multiple=True, metavar="NAMES",
              help="Comma-separated check names (default: the spec's acceptance.checks).")
@click.option("--tags", multiple=True, metavar="T", help="Run the checks with these tags.")
@click.option("--nodes", metavar="NODESET", help="Only these nodes, e.g. gpu[001-004].")
@click.option("--via", type=click.Choice(VIAS), default="ssh",
              show_default=True, help="How to reach the nodes.")
@click.option("--submit-host", metavar="NODE",
              help="Node to run srun/scontrol on (default: first login, else controller).")
@click.option("-o", "--output", "out", type=click.Path(file_okay=False, path_type=Path),
              help="This run directory (default: a new <runs-dir>/check-<time>-<id>; "
                   "never overwritten).")
@click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where run directories go (default ./runs or $FORGE_RUNS_DIR).")
@click.option("--timeout", type=float, help="Seconds before a check is killed (per node).")
@click.option("--burnin-seconds", type=float, help="SDC burn-in length (default from spec).")
@click.option("--collectives", help="NCCL collectives, e.g. all_reduce,alltoall.")
@click.option("--inject-flip", metavar="GPU:ITER",
              help="SDC: flip one output bit of GPU in iteration ITER (proves detection).")
@click.option("-O", "--option", "option_", multiple=True, metavar="CHECK.NAME=VALUE",
              help="A check's option, e.g. sdc.burnin_seconds=600 (forge check --list "
                   "shows each check's options, types, units and defaults).")
@click.option("--reservation", metavar="NAME",
              help="Slurm reservation the nodes are held in for acceptance (steps run in it).")
@click.option("--force", is_flag=True,
              help="Run disruptive checks on nodes that are not drained or reserved.")
@click.option("--list", "list_", is_flag=True, help="List the catalog and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
@table_option("the run's")
def check(spec: Path | None, checks_: tuple[str, ...], tags: tuple[str, ...], nodes: str | None,
          via: str, submit_host: str | None, out: Path | None, runs_dir: Path | None,
          timeout: float | None, burnin_seconds: float | None, collectives: str | None,
          inject_flip: str | None, option_: tuple[str, ...], reservation: str | None,
          force: bool, list_: bool, as_json: bool, table: str) -> None:
    """Run acceptance checks on the nodes of SPEC and write a run directory.

    \b
    Examples:
      forge check --list
      forge check site.yaml --checks conformance,tools,slurm
      forge check site.yaml --tags gpu --nodes gpu[001-004] --via slurm
      forge check site.yaml --checks sdc --burnin-seconds 600 -o runs/burnin-1
      forge check site.yaml --checks hbm,dcgm -O hbm.size_mib=8192 -O dcgm.level=4
      forge check site.yaml --tags gpu --table parquet   # a fleet: measurements.parquet

    Disruptive checks (burn-in, NCCL, GPUDirect, HBM, DCGM) refuse nodes that are
    not drained or in the --reservation, over SSH too, unless --force.
    """
    from provision.checks import options as opt
    from provision.checks import registry
    from provision.checks.service import CheckRequest, resolve_options, run_checks
    from provision.spec import load_site

    given = shortcut_options(burnin_seconds, collectives, inject_flip)
    for name, values in opt.parse_assignments(option_).items():
        given.setdefault(name, {}).update(values)
    if list_:
        resolve_options(registry.CATALOG, given)
        _list(registry.CATALOG)
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
    req = CheckRequest(tuple(selected), tuple(chosen), via=via, submit_host=submit_host,
                       options=resolve_options(selected, given), timeout_s=timeout,
                       reservation=reservation, force=force, out=out, runs_dir=runs_dir,
                       table=table)
    err = console(stderr=True)
    report, path = run_checks(site, req, spec_path=spec,
                              log=lambda m: err.print(m) if not as_json else None)
    verdict = report.to_dict()
    verdict["run_dir"] = str(path)
    if as_json:
        emit_json(verdict)
    else:
        _print(report, path)
    raise click.exceptions.Exit(int(report.exit_code))


def _list(catalog: Any) -> None:
    from provision.checks import options as opt

    for c in catalog:
        click.echo(f"{c.name:15} [{','.join(c.tags)}] {c.description}")
        for info in opt.fields(c.Options):
            click.echo(f"{'':15}   -O {c.name}.{info.describe()}")


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

"""`forge sweep`: periodic health sweeps (fan-out or node-local), their install, and imports."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from provision import runs
from provision.actions.policy import PolicyConfig
from provision.cli.output import console, emit_json, table_option
from provision.errors import InputError, named_number_error
from provision.fsutil import atomic_write_text
from provision.sweep import report
from provision.sweep.probes import PROFILES
from provision.sweep.result import SweepResult
from provision.sweep.run import DEFAULT_KEEP, SweepOptions, default_db, sweep_runs_root

if TYPE_CHECKING:
    from provision.analyze.findings import Analysis


class _SweepGroup(click.Group):
    """``forge sweep SPEC ...`` runs a sweep; ``forge sweep install|import ...`` are subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_SweepGroup)
def sweep() -> None:
    """Light, non-disruptive health checks of every node, from cron, systemd or Slurm.

    \b
    Examples:
      forge sweep site.yaml                        # all nodes, quick profile
      forge sweep site.yaml --nodes gpu[001-016] --profile full --json
      forge sweep site.yaml --drain --dry-run      # show what would be drained/resumed
      forge sweep site.yaml --local                # this node only (HealthCheckProgram)
      forge sweep install site.yaml --timer        # systemd timer + service, logrotate
    Exit 0 all healthy, 1 a node failed a check, 4 a node unreachable, 2 bad input.
    """


def _write_outputs(result: SweepResult, analysis: Analysis | None, junit: Path | None,
                   prom: Path | None) -> None:
    if junit and analysis is not None:
        from provision.report.junit import junit_xml

        atomic_write_text(junit, junit_xml(analysis))
    if prom:
        text = report.prometheus(result)
        if analysis is not None:
            from provision.report.prom import prom_text

            text += prom_text(analysis)
        atomic_write_text(prom, text)


@sweep.command("run")
@click.argument("spec", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--profile", type=click.Choice(sorted(PROFILES)), default="quick", show_default=True)
@click.option("--nodes", "nodeset", help="Node set to sweep (default: every node of the spec).")
@click.option("--drain", is_flag=True, help="Drain failing nodes / resume recovered ones.")
@click.option("--dry-run", is_flag=True, help="Show the drain/resume actions; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result document as JSON.")
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="Write JUnit XML.")
@click.option("--prom", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a Prometheus textfile (node_exporter textfile collector).")
@click.option("--local", is_flag=True, help="Check this node only, here (no SSH).")
@click.option("--node", "local_node", help="With --local: this node's name in the spec "
              "(default: the host name).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="With --local: compiled expectations (/etc/forge/sweep.json) instead of SPEC.")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path),
              help="History store (default $FORGE_HISTORY_DB or /var/lib/forge/history.db).")
@click.option("--fail-after", default=3, show_default=True,
              help="Consecutive failing sweeps before a non-fatal finding drains.")
@click.option("--resume-after", default=2, show_default=True,
              help="Consecutive clean sweeps before a forge drain is lifted.")
@click.option("--max-workers", default=64, show_default=True, help="Concurrent SSH sessions.")
@click.option("--node-timeout", type=float, help="Seconds per node (default: sum of probes).")
@click.option("--controller", help="Where scontrol runs: a node name, or 'local' "
              "(default: the spec's first controller).")
@click.option("--baseline-days", default=7.0, show_default=True,
              help="Drift baseline: median of each reading over this many days of history.")
@click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the sweep's run directory goes (default $FORGE_RUNS_DIR, else runs/ "
                   "beside --db; --local keeps one only when this or FORGE_RUNS_DIR is set).")
@click.option("--keep", "keep_runs", default=DEFAULT_KEEP, show_default=True,
              type=click.IntRange(min=0),
              help="Sweep run directories kept there; older ones are removed.")
@table_option("the sweep run directory's")
def run(spec: Path | None, profile: str, nodeset: str | None, drain: bool, dry_run: bool,
        as_json: bool, junit: Path | None, prom: Path | None, local: bool,
        local_node: str | None, config_path: Path | None, db: Path | None, fail_after: int,
        resume_after: int, max_workers: int, node_timeout: float | None,
        controller: str | None, baseline_days: float, runs_dir: Path | None,
        keep_runs: int, table: str) -> None:
    """Sweep SPEC's nodes (see `forge sweep --help`).

    \b
    Example:
      forge sweep run site.yaml --nodes 'gpu[001-004]' --profile quick
    """
    opts = SweepOptions(profile=profile, nodes=nodeset, drain=drain, dry_run=dry_run,
                        db=db or default_db(), policy=PolicyConfig(fail_after, resume_after),
                        max_workers=max_workers, node_timeout_s=node_timeout,
                        controller=controller, runs_dir=runs_dir, keep_runs=keep_runs,
                        table=table,
                        run_dir=not local or runs_dir is not None
                        or bool(os.environ.get(runs.ENV)))
    if local:
        result = _local(spec, config_path, local_node, opts)
    else:
        if spec is None:
            raise InputError("SPEC is required (or --local with --config)")
        from provision.spec import load_site
        from provision.sweep.run import sweep_site

        result = sweep_site(load_site(spec), opts)
    from provision.sweep.analysis import analyze_sweep

    analysis = analyze_sweep(result, opts.db, baseline_days)
    _write_outputs(result, analysis, junit, prom)
    if as_json:
        doc = result.to_dict()
        if analysis is not None:
            from provision.report.json_report import to_dict

            doc["analysis"] = to_dict(analysis)
        if opts.run_dir:
            doc["run_dir"] = str(sweep_runs_root(opts) / result.run_id)
        emit_json(doc)
    elif local:
        click.echo(report.nhc_line(result.nodes[0]))
    else:
        console().print(report.table(result), markup=False)
        if analysis is not None:
            console().print(report.analysis_lines(analysis), markup=False)
        console().print(f"run directory: {sweep_runs_root(opts) / result.run_id}",
                        markup=False)
    click.get_current_context().exit(int(result.exit_code()))


def _local(spec: Path | None, config_path: Path | None, node: str | None,
           opts: SweepOptions) -> SweepResult:
    from provision.sweep.expect import for_node, load_config
    from provision.sweep.run import local_sweep

    name = node or socket.gethostname().split(".")[0]
    if config_path is not None:
        exp = load_config(config_path, name)
        return local_sweep(exp, opts, source=config_path, keep_as="sweep-config.json")
    if spec is not None:
        from provision.spec import load_site

        site = load_site(spec)
        return local_sweep(for_node(site, site.node(name)), opts, source=spec)
    raise InputError("--local needs SPEC or --config /etc/forge/sweep.json")


@sweep.command("install")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--timer", "mode", flag_value="timer", default=True, help="systemd timer (default).")
@click.option("--cron", "mode", flag_value="cron", help="cron entry in /etc/cron.d.")
@click.option("--interval", default="15min", show_default=True, help="Timer interval.")
@click.option("--cron-schedule", default="*/15 * * * *", show_default=True)
@click.option("--profile", type=click.Choice(sorted(PROFILES)), default="quick", show_default=True)
@click.option("--drain", is_flag=True, help="Installed sweeps drain and resume nodes.")
@click.option("--db", default="/var/lib/forge/history.db", show_default=True)
@click.option("--prom", default="/var/lib/node_exporter/textfile_collector/forge_sweep.prom",
              show_default=True, help="Prometheus textfile the sweep writes.")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("/"),
              show_default=True, help="Write under this directory (staging, images).")
@click.option("--spec-path", help="SPEC's path as the host sees it (default: absolute SPEC).")
@click.option("--force", is_flag=True, help="Replace existing files with other content.")
@click.option("--json", "as_json", is_flag=True)
@table_option("every installed sweep's run directory's")
def install(spec: Path, mode: str, interval: str, cron_schedule: str, profile: str, drain: bool,
            db: str, prom: str, root: Path, spec_path: str | None, force: bool,
            as_json: bool, table: str) -> None:
    """Install periodic sweeps: systemd timer or cron (with flock), logrotate, forge-health.

    \b
    Example:
      forge sweep install site.yaml --timer --interval 15min --drain
      forge sweep install site.yaml --cron --root /tmp/stage
      forge sweep install site.yaml --timer --table parquet
    Then: systemctl daemon-reload && systemctl enable --now forge-sweep.timer
    """
    from provision.spec import load_site
    from provision.sweep import install as inst
    from provision.sweep.expect import site_config

    site = load_site(spec)
    opts = inst.InstallOptions(spec=spec_path or str(spec.resolve()), mode=mode,
                               interval=interval, cron=cron_schedule, profile=profile,
                               drain=drain, db=db, prom=prom, table=table)
    written = inst.write(root, inst.files(opts, site_config(site)), force=force)
    if as_json:
        emit_json({"written": [str(p) for p in written], "mode": mode})
        return
    for p in written:
        click.echo(f"wrote {p}")
    if mode == "timer":
        click.echo("next: systemctl daemon-reload && systemctl enable --now forge-sweep.timer")


@sweep.command("import")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path))
def import_(files: tuple[Path, ...], db: Path | None) -> None:
    """Store sweep results written elsewhere (`forge sweep --local --json` from a DaemonSet).

    \b
    Example:
      forge sweep import /var/lib/forge/results/*.json --db /var/lib/forge/history.db
    """
    from provision.fsutil import read_input_text
    from provision.history.store import HistoryStore
    from provision.sweep.result import from_document
    from provision.sweep.run import _run_info

    total = skipped = 0
    with HistoryStore(db or default_db()) as store:
        for f in files:
            try:
                doc: Any = json.loads(read_input_text(f, 256 * 2**20, "sweep result"))
            except json.JSONDecodeError as exc:
                raise InputError(f"{f}:{exc.lineno}: not JSON ({exc.msg})") from None
            except ValueError as exc:  # a number past int()'s limit
                if (named := named_number_error(exc, str(f))) is None:
                    raise
                raise named from exc
            result = from_document(doc, source=str(f))
            if store.has_run(result.run_id):   # imported before: never count a run twice
                skipped += 1
                continue
            total += store.record(_run_info(result, "import"), result.records)
    click.echo(f"imported {total} records from {len(files) - skipped} files"
               + (f" ({skipped} already imported)" if skipped else ""))

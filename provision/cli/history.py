"""`forge history`: trends from the sweep history store, and its retention."""

from __future__ import annotations

from pathlib import Path

import click

from provision.history.store import HistoryStore, default_db
from provision.history.timeparse import parse_duration, parse_since, to_iso
from provision.history.trend import series, trends, trends_of


@click.command()
@click.argument("nodeset", required=False)
@click.option("--metric", help="Only this metric (e.g. gpu_temperature, xid_events).")
@click.option("--since", default="7d", show_default=True, help="7d, 36h, 15m or an ISO date.")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path),
              help="History store (default $FORGE_HISTORY_DB or /var/lib/forge/history.db).")
@click.option("--json", "as_json", is_flag=True, help="Print the samples as JSON.")
@click.option("--width", default=40, show_default=True, type=click.IntRange(1, 1000),
              help="Sparkline width (1..1000).")
@click.option("--compact", is_flag=True, help="Apply retention: downsample, delete, vacuum.")
@click.option("--raw-days", default="14d", show_default=True, help="With --compact.")
@click.option("--keep-days", default="365d", show_default=True, help="With --compact.")
@click.option("--bucket", type=click.Choice(["hour", "day"]), default="hour", show_default=True)
@click.option("--vacuum", type=click.Choice(["incremental", "full", "none"]),
              default="incremental", show_default=True)
def history(nodeset: str | None, metric: str | None, since: str, db: Path | None,
            as_json: bool, width: int, compact: bool, raw_days: str, keep_days: str,
            bucket: str, vacuum: str) -> None:
    """Show how nodes' readings changed over time, one sparkline per node, GPU and metric.

    \b
    Examples:
      forge history gpu[001-004] --metric gpu_temperature --since 3d
      forge history --metric xid_events --json
      forge history --compact --raw-days 14 --keep-days 180
    """
    path = db or default_db()
    if compact:
        from provision.history.retention import RetentionPolicy
        from provision.history.retention import compact as do_compact

        policy = RetentionPolicy(parse_duration(raw_days, flag="--raw-days") / 86400,
                                 parse_duration(keep_days, flag="--keep-days") / 86400,
                                 bucket, vacuum)  # type: ignore[arg-type]
        with HistoryStore(path) as store:
            res = do_compact(store, policy)
        click.echo(f"compacted {path}: {res.raw_rows_folded} raw rows folded into "
                   f"{res.buckets_written} {bucket} buckets, {res.rows_deleted} rows and "
                   f"{res.runs_deleted} runs deleted")
        return
    nodes = None
    if nodeset:
        from provision.nodes import expand

        nodes = expand(nodeset)
    start = parse_since(since)
    with HistoryStore(path, readonly=True) as store:
        if as_json:
            from provision.cli.output import emit_json

            samples = store.samples(nodes=nodes, metric=metric, since=start)
            emit_json({"schema_version": 1, "since": to_iso(start), "samples": [
                {"ts": to_iso(s.ts), "node": s.node, "gpu": s.gpu, "uuid": s.uuid,
                 "serial": s.serial, "metric": s.metric, "value": s.value, "unit": s.unit,
                 "check": s.check, "agg": s.agg, "n": s.n, "min": s.vmin, "max": s.vmax}
                for s in samples]})
            return
        lines_of = (trends_of(*store.values(metric=metric, nodes=nodes, since=start), metric,
                              width) if metric
                    else trends(series(store.samples(nodes=nodes, since=start)), width))
    if not lines_of:
        from provision.cli.output import console

        console().print(f"no samples since {to_iso(start)} in {path}", markup=False)
        return
    lines = []
    current = None
    for t in lines_of:
        if t.metric != current:
            current = t.metric
            lines.append(f"{t.metric} ({t.unit or ''}) since {to_iso(start)}")
        lines.append(f"  {t.key:<18} {t.spark:<{width}}  last {t.last:g}  min {t.low:g}  "
                     f"max {t.high:g}  n={t.n}")
    click.echo("\n".join(lines))  # thousands of plain lines: no rich rendering per line

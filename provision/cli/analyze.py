"""`forge analyze`: judge measurement files and write the acceptance reports."""

from __future__ import annotations

from pathlib import Path

import click

from provision.errors import ChecksFailed, InputError


def _guard(path: Path, marker: str, force: bool) -> None:
    """Replace a report forge wrote before; refuse to replace anything else without --force."""
    if force or not path.exists():
        return
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a report file")
    try:
        head = path.read_text(encoding="utf-8", errors="replace")[:4096]
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    if marker not in head:
        raise InputError(f"{path} exists and was not written by forge analyze",
                         hint="choose another file, or pass --force to replace it")


@click.command("analyze")
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the analysis as JSON on stdout.")
@click.option("--junit", type=click.Path(path_type=Path), help="Write JUnit XML here.")
@click.option("--html", type=click.Path(path_type=Path), help="Write the HTML report here.")
@click.option("--prom", type=click.Path(path_type=Path),
              help="Write Prometheus text (node_exporter textfile collector) here.")
@click.option("--baseline", type=click.Path(path_type=Path),
              help="An earlier measurements file or run directory: flag drift against it.")
@click.option("--strict/--skip-bad", default=True, show_default=True,
              help="Refuse input with a malformed line (exit 2), or skip and report such lines.")
@click.option("--fail-on", type=click.Choice(["fail", "warn"]), default="fail",
              show_default=True, help="Which severity fails acceptance (exit 1).")
@click.option("--force", is_flag=True, help="Replace report files not written by forge.")
@click.option("--cluster", help="Cluster name for the HTML report's title.")
@click.option("--save-table", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the records read to one Parquet table (Arrow IPC if the name "
                   "ends in .arrow): analyzing that later is several times faster.")
def analyze(results: tuple[Path, ...], as_json: bool, junit: Path | None, html: Path | None,
            prom: Path | None, baseline: Path | None, strict: bool, fail_on: str,
            force: bool, cluster: str | None, save_table: Path | None) -> None:
    """Judge measurements against hard limits, like parts, pairs and a baseline.

    RESULTS are measurement files (JSON Lines, Parquet or Arrow IPC) or run
    directories holding measurements.jsonl (or .parquet, .arrow). Exit 0 when everything
    passes, 1 when anything fails acceptance, 2 on bad input.

    \b
    Example:
      forge analyze runs/2025-03-01 --html report.html --junit junit.xml
      forge analyze new.jsonl --baseline runs/2025-01-10 --json
      forge analyze runs/check-* --save-table fleet.parquet   # then: forge analyze fleet.parquet
    """
    from dataclasses import replace

    from provision.analyze import DEFAULT_POLICY, Baseline, analyze_columns
    from provision.analyze.table import load_columns
    from provision.cli.output import console
    from provision.fsutil import atomic_write_text
    from provision.nodes import fold

    targets = [(p, m) for p, m in ((junit, "forge analyze"), (html, "forge analyze"),
                                   (prom, "forge analyze")) if p is not None]
    for path, marker in targets:
        _guard(path, marker, force)
    if save_table is not None and save_table.exists() and not force:
        raise InputError(f"{save_table} exists", hint="pass --force to replace it")
    cols, bad, files = load_columns(list(results), strict=strict, save_as=save_table)
    if not cols.n:
        raise InputError(f"no measurements in {', '.join(files)}",
                         hint="each line must be a JSON object: see docs/measurements.md")
    base = None
    if baseline is not None:
        bcols, bbad, bfiles = load_columns([baseline], strict=strict)
        bad += bbad
        base = Baseline.from_columns(bcols, source=f"baseline {bfiles[0]}")
    policy = replace(DEFAULT_POLICY, fail_on="warn" if fail_on == "warn" else "fail")
    result = analyze_columns(cols, baseline=base, policy=policy, bad_lines=bad, inputs=files)

    # every report is rendered before the first is written: a report that cannot be made,
    # or an interrupt while rendering, leaves none of this run's reports behind
    reports: list[tuple[Path, str]] = []
    if junit is not None:
        from provision.report.junit import junit_xml
        reports.append((junit, junit_xml(result)))
    if prom is not None:
        from provision.report.prom import prom_text
        reports.append((prom, prom_text(result)))
    if html is not None:
        from provision.report.html import html_report
        reports.append((html, html_report(result, cluster=cluster)))
    for path, text in reports:
        atomic_write_text(path, text)
    if as_json:
        from provision.report.json_report import to_json
        click.echo(to_json(result), nl=False)
        for b in bad[:20]:
            click.echo(f"forge: skipped {b}", err=True)
    else:
        from provision.report.table import render
        render(result, console())
    if result.failed:
        raise ChecksFailed(f"acceptance failed: {len(result.failing)} failing findings on "
                           f"{fold(result.failing_nodes)}")

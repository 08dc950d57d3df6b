"""``forge rma NODE[:GPU] RUN...``: the evidence bundle a vendor asks for, for one part."""

from __future__ import annotations

from pathlib import Path

import click

from provision.errors import InputError


@click.command("rma")
@click.argument("part", metavar="NODE[:GPU]")
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path),
                metavar="RUN...")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              help="Bundle directory (default: rma-NODE[-gpuN] here).")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path),
              help="History store to quote the part's earlier readings from.")
@click.option("--cluster", help="Cluster name for the report.")
@click.option("--bmc-inventory", type=click.Path(dir_okay=False, path_type=Path),
              help="Saved 'forge bmc inventory --json': the node's serial joins the identity.")
@click.option("--force", is_flag=True, help="Replace an existing bundle directory.")
def rma(part: str, results: tuple[Path, ...], output: Path | None, db: Path | None,
        cluster: str | None, bmc_inventory: Path | None, force: bool) -> None:
    """Write the evidence bundle a vendor asks for, for one node or GPU.

    It holds the part's identity, every failing reading with its limit and source,
    raw output excerpts, history, and the commands the vendor asks for next.

    RUN is a run directory (forge check) or a measurements file (forge ingest).

    \b
    Example:
      forge rma gpu017:3 runs/check-20250301T120000Z -o rma-gpu017-gpu3
    """
    from provision.analyze import analyze, load
    from provision.report.html import html_report
    from provision.report.rma import Part, evidence, write_bundle

    which = Part.parse(part)
    records, bad, files = load(list(results), strict=True)
    if not records:
        raise InputError(f"no measurements in {', '.join(files)}")
    if bmc_inventory is not None:
        from provision.bmc.report import node_serials

        serials = node_serials(bmc_inventory)
        for r in records:
            if r["node"] in serials and not r.get("node_serial"):
                r["node_serial"] = serials[r["node"]]
    result = analyze(records, bad_lines=bad, inputs=files)
    runs = [p for p in results if p.is_dir()]
    doc = evidence(result, records, which, runs=runs, db=db)
    mine = [r for r in records if which.owns(r["node"], r.get("gpu"))]
    html = html_report(analyze(mine, inputs=files), cluster=cluster,
                       title=f"forge RMA evidence: {which.label}",
                       identity=doc["part"])
    target = write_bundle(output or Path(f"rma-{which.slug}"), doc, html, force=force)
    n_fail = sum(1 for f in doc["findings"] if f["severity"] == "fail")
    click.echo(f"forge rma: {which.label}: {doc['verdict']}, {n_fail} failing readings,"
               f" {len(doc['excerpts'])} raw excerpts; wrote {target}", err=True)

"""``forge baseline SPEC RUN_DIR --node NODE``: record a golden node's fingerprint and figures.

The run directory is a ``forge check`` run that covered NODE (conformance or
nvlink for the topology; hbm, sdc, nccl, gpudirect for the figures). The
baseline is refused, naming each figure, when a figure is above its physical
figure (a measurement error) or below the physics floor (not a golden node).
Point the spec at the file with ``acceptance.baseline``; ``forge plan`` then
shows each calibrated floor as ``fraction x golden figure``.

Exit codes: 0 written, 2 bad input or a refused baseline.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from provision.cli.output import console, emit_json
from provision.errors import InputError


@click.command("baseline")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--node", required=True, help="The golden node (covered by RUN_DIR).")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Baseline file (default baseline-<profile>.json beside the spec).")
@click.option("--force", is_flag=True, help="Replace an existing baseline file.")
@click.option("--json", "as_json", is_flag=True, help="Print the baseline as JSON.")
def baseline(spec: Path, run_dir: Path, node: str, out: Path | None, force: bool,
             as_json: bool) -> None:
    """Calibrate the floors on a golden node: fingerprint + measured figures.

    \b
    Example:
      forge check site.yaml --nodes gpu001 --checks conformance,nvlink,hbm,sdc,nccl \\
          -o runs/golden --force
      forge baseline site.yaml runs/golden --node gpu001
    """
    from provision.checks.baseline import build
    from provision.expectations import plan_site
    from provision.fsutil import atomic_write_text
    from provision.spec import load_site

    if not spec.exists():
        raise InputError(f"{spec}: no such file")
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: no such run directory")
    site = load_site(spec)
    try:
        plan = plan_site(site).for_node(node)
    except KeyError:
        raise InputError(f"--node {node}: not a node of {spec}") from None
    doc = build(run_dir, plan)
    path = out or spec.parent / f"baseline-{plan.profile}.json"
    if path.exists() and not force:
        raise InputError(f"{path}: exists", hint="pass --force to replace it, or -o FILE")
    atomic_write_text(path, json.dumps(doc, indent=2, sort_keys=True) + "\n")
    if as_json:
        emit_json({**doc, "written": str(path)})
        return
    con = console()
    for name, fig in doc["figures"].items():
        con.print(f"{name:22} {fig['value']:g} {fig['unit']} ({fig['samples']} readings)")
    fp = doc.get("fingerprint")
    con.print("fingerprint: " + (f"{len(fp['gpu_gpu'])} GPU pairs, {len(fp['gpu_nic'])} "
                                 f"GPU-NIC paths" if fp else "none (no topo -m in the run)"))
    con.print(f"written: {path}  (set acceptance.baseline: {path.name} in the spec)")

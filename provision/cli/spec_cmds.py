"""`forge validate | plan | render | schema | migrate`: the Day 0 commands on a site spec."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from provision.cli.output import console, emit_json
from provision.errors import InputError
from provision.fsutil import atomic_write_text, read_input_text
from provision.nodes import fold
from provision.spec import Site, load_site
from provision.spec.advice import warnings

if TYPE_CHECKING:  # the heavy modules load only in the commands that need them
    from provision.expectations import SitePlan

SPEC = click.argument("spec", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))


def summarize(site: Site, *, groups: bool = True) -> dict[str, Any]:
    """The one-line summary's figures; ``groups`` (folded node sets) only where printed."""
    out: dict[str, Any] = {
        "cluster": site.name, "size": site.size, "stack": site.stack.scheduler,
        "fabric": site.fabric.type, "nodes": len(site.nodes),
        "gpus": sum(n.profile.gpu.count for n in site.nodes if n.profile.gpu),
    }
    if groups:
        members: dict[str, list[str]] = {}
        for n in site.nodes:
            members.setdefault(n.group, []).append(n.name)
        out["groups"] = {g: fold(names) for g, names in members.items()}
    return out


@click.command()
@SPEC
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def validate(spec: Path, as_json: bool) -> None:
    """Validate a site spec; list every problem with file:line:column.

    \b
    Example:
      forge validate site-specs/small.yaml
    Exit 0 when valid, 2 with every problem listed when not.
    """
    site = load_site(spec)
    advice = warnings(site)
    if as_json:
        emit_json({"valid": True, **summarize(site), "warnings": advice})
        return
    s = summarize(site, groups=False)
    click.echo(f"{spec}: valid: cluster {s['cluster']} ({s['size']}), {s['nodes']} nodes, "
                    f"{s['gpus']} GPUs, {s['stack']} on {s['fabric']}")
    say_warnings(spec, advice)


def say_warnings(spec: Path, advice: list[str]) -> None:
    """Each warning on stderr, one line each, naming the spec."""
    for line in advice:
        click.echo(f"{spec}: warning: {line}", err=True)


def plan_dict(plan: SitePlan, site: Site) -> dict[str, Any]:
    groups: dict[str, list[Any]] = {}
    for p in plan.nodes:
        groups.setdefault(p.group, []).append(p)
    out = []
    for name, plans in groups.items():
        first = plans[0]
        out.append({
            "group": name, "nodes": fold(p.node for p in plans), "profile": first.profile,
            "gpu": {"model": first.gpu_model, "count": first.gpu_count,
                    "memory_gb": first.gpu_memory_gb,
                    "nvlink_pairs": [list(x) for x in first.nvlink_pairs]},
            "nics": list(first.nics),
            "thresholds": [t.to_dict() for t in first.thresholds],
        })
    return {"schema_version": 1, "site": site.name, "groups": out}


@click.command()
@SPEC
@click.option("--json", "as_json", is_flag=True,
              help="Print the plan as JSON (the checks' contract).")
def plan(spec: Path, as_json: bool) -> None:
    """Show what every node must look like and each acceptance threshold.

    Each threshold is printed as "limit = fraction x physical figure (source)".

    \b
    Example:
      forge plan site-specs/small.yaml --json
    """
    from provision.expectations import plan_site

    site = load_site(spec)
    data = plan_dict(plan_site(site), site)
    if as_json:
        emit_json(data)
        return
    print_plan(data)


def print_plan(data: dict[str, Any]) -> None:
    from rich.table import Table

    from provision import judge

    con = console()
    for g in data["groups"]:
        gpu = g["gpu"]
        con.print(f"[bold]{g['nodes']}[/bold] (group {g['group']}, profile {g['profile']})")
        if gpu["model"]:
            pairs = " ".join(f"{a}-{b}" for a, b in gpu["nvlink_pairs"]) or "none"
            con.print(f"  GPUs: {gpu['count']}x {gpu['model']} {gpu['memory_gb']:g} GB, "
                      f"NVLink bridged pairs: {pairs}")
        for n in g["nics"]:
            con.print(f"  NICs: {n['count']}x {n['model']} {n['ports']}-port {n['rate_gbps']:g} "
                      f"Gb/s {n['link_layer']} ({n['purpose']}), PCIe Gen{n['pcie_gen']} "
                      f"x{n['pcie_width']}")
        if not g["thresholds"]:
            continue
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        for col in ("check", "metric", "limit", "= fraction x figure", "source"):
            table.add_column(col, overflow="fold")
        for t in g["thresholds"]:
            op = judge.operator(t["metric"])
            mark = " provisional" if t.get("provisional") else ""
            table.add_row(t["check"], t["name"], f"{op} {t['limit']:g} {t['unit']}",
                          f"{t['fraction']:g} x {t['figure_value']:g} {t['unit']} "
                          f"({t['figure']}){mark}", t["source"][:70])
        con.print(table)
        con.print()


@click.command()
@SPEC
@click.option("-o", "--output", "--out", "out_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Where to write: the inventory directory.")
@click.option("--force", is_flag=True, help="Overwrite files changed since forge wrote them.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
def render(spec: Path, out_dir: Path, force: bool, as_json: bool) -> None:
    """Render the Ansible inventory (hosts.yml, group_vars, host_vars).

    Files you edited, or that forge did not write, are kept and reported;
    only --force overwrites them.

    \b
    Example:
      forge render site-specs/small.yaml -o site-inventory
      ansible-inventory -i site-inventory --graph
    """
    from provision.inventory import render_inventory

    site = load_site(spec)  # read once: the Site keeps the text the header hashes
    report = render_inventory(site, out_dir, force=force)
    advice = warnings(site)
    if as_json:
        emit_json({**report.to_dict(), "warnings": advice})
        return
    print_render_report(report.to_dict())
    say_warnings(spec, advice)


def print_render_report(r: dict[str, Any]) -> None:
    con = console()
    con.print(f"{r['out_dir']}: {len(r['written'])} written, {len(r['unchanged'])} unchanged, "
              f"{len(r['removed'])} removed")
    for rel in r["overwritten"]:
        con.print(f"  overwritten (--force): {rel}")
    if r["kept"]:
        err = console(stderr=True)
        err.print(f"[yellow]kept {len(r['kept'])} file(s) changed since forge wrote them "
                  f"(or not written by forge); re-render with --force to replace:[/yellow]")
        for rel in r["kept"]:
            err.print(f"  kept: {rel}")


@click.command()
@click.option("-o", "--output", "--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write: a file instead of stdout.")
def schema(out: Path | None) -> None:
    """Print the site spec's JSON Schema.

    \b
    Example:
      forge schema -o site-spec.schema.json
    """
    import json

    from provision.spec.schema import site_schema

    text = json.dumps(site_schema(), indent=2, sort_keys=True) + "\n"
    if out:
        atomic_write_text(out, text)
    else:
        click.echo(text, nl=False)


@click.command(name="migrate")
@SPEC
@click.option("-o", "--output", "--out", "out", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write: the migrated spec (never the input file).")
def migrate_cmd(spec: Path, out: Path) -> None:
    """Rewrite a spec in the current spec_version (the original is left alone).

    \b
    Example:
      forge migrate old-site.yaml -o site.yaml
    """
    import yaml

    from provision.spec.loader import MAX_SPEC_BYTES, validate_document
    from provision.spec.migrate import VersionProblem
    from provision.spec.migrate import migrate as migrate_document
    from provision.spec.yamlsrc import load_located

    if out.resolve() == spec.resolve():
        raise InputError("migrate writes a new file; -o must differ from the input spec")
    if out.exists():
        raise InputError(f"{out} exists; choose another name (forge never overwrites a spec)")
    if not out.parent.is_dir():
        raise InputError(f"{out.parent}: no such directory")
    located = load_located(read_input_text(spec, MAX_SPEC_BYTES, "site spec"), str(spec))
    if not isinstance(located.data, dict):
        raise InputError(f"{spec}: the site spec must be a mapping")
    try:
        doc, passed = migrate_document(located.data)
    except VersionProblem as exc:
        raise InputError(f"{spec}: {exc}") from None
    text = yaml.safe_dump(doc, sort_keys=False)
    validate_document(load_located(text, str(out)), spec.resolve().parent)
    atomic_write_text(out, text)
    console().print(f"{out}: written (migrated through versions {passed or 'none'})")


migrate = migrate_cmd

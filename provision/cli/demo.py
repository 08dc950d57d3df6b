"""`forge demo`: forge's main job on its embedded default site, end to end.

Today: validate, plan and render the built-in *small* reference-architecture
site (4x SR675 V3 with 8x H100 NVL each, NDR200 InfiniBand, Slurm) and show
the result.
"""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from provision.cli.output import console
from provision.cli.spec_cmds import plan_dict, print_plan, print_render_report, summarize
from provision.expectations import plan_site
from provision.fsutil import atomic_write_text
from provision.inventory import render_inventory
from provision.spec import load_site_text
from provision.spec.presets import reference_site


def embedded_spec_text(size: str = "small") -> str:
    header = (f"# forge's embedded default: the reference architecture's '{size}' size.\n"
              "# Everything not stated here comes from the preset (forge validate shows it).\n")
    return header + yaml.safe_dump(reference_site(size), sort_keys=False)


def run_spec_steps(workdir: Path, size: str = "small") -> None:
    con = console()
    text = embedded_spec_text(size)
    spec_path = workdir / f"ra-{size}.yaml"
    atomic_write_text(spec_path, text)
    con.rule(f"1/3 validate {spec_path}")
    site = load_site_text(text, str(spec_path), workdir)
    s = summarize(site)
    con.print(f"valid: cluster {s['cluster']} ({s['size']}), {s['nodes']} nodes, {s['gpus']} GPUs, "
              f"{s['stack']} on {s['fabric']}")
    for group, nodes in s["groups"].items():
        con.print(f"  {group}: {nodes}")
    con.rule("2/3 plan: what every node must show, and each threshold")
    print_plan(plan_dict(plan_site(site), site))
    con.rule(f"3/3 render the Ansible inventory into {workdir / 'inventory'}")
    report = render_inventory(site, workdir / "inventory")
    print_render_report(report.to_dict())


@click.command()
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              default=Path(".forge-demo"), show_default=True,
              help="Where the demo writes its spec and inventory.")
@click.option("--size", type=click.Choice(["small", "medium", "large", "ovx-l40s"]),
              default="small", show_default=True, help="Reference-architecture size.")
@click.option("--lab/--no-lab", default=True, show_default=True,
              help="Then start the container lab, deploy the Slurm stack onto it, run a job.")
def demo(workdir: Path, size: str, lab: bool) -> None:
    """Run forge's main job on the embedded reference-architecture site.

    \b
    Example:
      forge demo
      forge demo --size large --workdir /tmp/forge-large
    """
    workdir.mkdir(parents=True, exist_ok=True)
    run_spec_steps(workdir, size)
    if lab:
        run_lab_steps()


def run_lab_steps(nodes: int = 3) -> None:
    """Lab up, `forge deploy` onto it, then sinfo and srun (what `forge demo` ends with)."""
    from provision.cli.deploy import raise_for, run_and_report
    from provision.deploy.driver import DeployOptions
    from provision.lab import lab as labmod
    from provision.lab.config import from_env
    from provision.lab.demo import sinfo_and_srun

    con = console()
    cfg = from_env(nodes=nodes)
    con.rule(f"lab: {nodes} Debian 13 systemd nodes on podman, SSH on 127.0.0.1")
    info = labmod.up(cfg, log=lambda m: con.print(m, markup=False))
    con.rule(f"deploy the Slurm stack onto the lab ({info.spec})")
    result = run_and_report(DeployOptions(spec=Path(info.spec)), spec_label=info.spec)
    raise_for(result)
    con.rule("the cluster at work: sinfo, then srun on every node")
    sinfo, hosts = sinfo_and_srun(cfg)
    con.print(sinfo.rstrip(), markup=False)
    con.print(f"$ srun -N{nodes} hostname", markup=False)
    con.print(hosts.rstrip(), markup=False)

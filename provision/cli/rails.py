"""``forge rails record``: the profile's rail map from a golden node's ``ibdev2netdev``."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from provision.errors import InputError


@click.group()
def rails() -> None:
    """Compute rails by identity (PCI address), not by mlx5_<i> order.

    \b
    Example:
      forge rails record gpu001.ibdev2netdev --exclude 0000:c1:00.0
    """


@rails.command()
@click.argument("capture", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--exclude", multiple=True, metavar="PCI",
              help="A PCI function that is not a compute port (storage, north-south); repeat.")
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Check the map against this site spec's profile (with --profile).")
@click.option("--profile", "profile_name", help="The profile the map is for.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the YAML here (atomically) instead of printing it.")
def record(capture: Path, exclude: tuple[str, ...], spec_path: Path | None,
           profile_name: str | None, output: Path | None) -> None:
    """Record the rail map from `ibdev2netdev -v` (or plain `ibdev2netdev`) output.

    \b
    Example, on a golden node:  ibdev2netdev -v > gpu001.ibdev2netdev
    Then:              forge rails record gpu001.ibdev2netdev --exclude 0000:c1:00.0 \\
                         --spec site.yaml --profile sr675v3-h100nvl-ib
    Paste the printed `rail_map:` under profiles.<name> in the site spec. Rails
    follow PCI address order; name the storage adapter's functions with --exclude.
    """
    from provision.fsutil import atomic_write_text
    from provision.spec import rails as railmap

    ports = railmap.parse_ibdev2netdev(capture.read_text(encoding="utf-8", errors="replace"),
                                       str(capture))
    link_layer = None
    want = None
    if spec_path is not None or profile_name is not None:
        if spec_path is None or profile_name is None:
            raise InputError("--spec and --profile go together")
        from provision.spec import load_site

        site = load_site(spec_path)
        profile = next((p for p in site.profiles if p.name == profile_name), None)
        if profile is None:
            raise InputError(f"--profile {profile_name}: not a profile of {spec_path} "
                             f"({', '.join(p.name for p in site.profiles)})")
        layers = {n.link_layer for n in profile.compute_nics}
        link_layer = layers.pop() if len(layers) == 1 else None
        want = profile.compute_ports
    mapped = railmap.compute_rails(ports, exclude=exclude, link_layer=link_layer)
    if want is not None and len(mapped) != want:
        raise InputError(f"{capture}: {len(mapped)} compute ports after --exclude, but profile "
                         f"{profile_name} has {want}: "
                         + ", ".join(f"{r.pci} {r.hca} {r.netdev}" for r in mapped))
    doc = {"rail_map": [{"pci": r.pci, "hca": r.hca, "netdev": r.netdev} for r in mapped]}
    text = (f"# recorded by `forge rails record` from {capture.name}: rail i = i-th entry\n"
            + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None))
    if output is None:
        click.echo(text, nl=False)
    else:
        atomic_write_text(output, text)

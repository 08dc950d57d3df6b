"""``forge lab up|down|status``: the local container lab (podman, Debian 13 systemd nodes)."""

from __future__ import annotations

from dataclasses import asdict

import click

from provision.cli.output import console, emit_json
from provision.lab import lab as labmod
from provision.lab.config import MAX_NODES, from_env


@click.group("lab")
def lab() -> None:
    """A local cluster of Debian systemd containers, reachable over SSH on 127.0.0.1.

    \b
    State lives in .lab/ (or $FORGE_LAB_DIR): SSH key, known_hosts, site spec.
    Example:
      forge lab up && forge deploy site-specs/lab.yaml
      forge lab up --nodes 5     # writes .lab/site.yaml for 5 nodes
    """


@lab.command("up")
@click.option("--nodes", type=click.IntRange(1, MAX_NODES), default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def up(nodes: int, as_json: bool) -> None:
    """Build the node image if needed and start a fresh lab (old nodes are replaced).

    \b
    Example:
      forge lab up --nodes 3
    """
    cfg = from_env(nodes=nodes)
    out = console(stderr=as_json)
    info = labmod.up(cfg, log=lambda m: out.print(m, markup=False))
    if as_json:
        emit_json(asdict(info))
        return
    for n in info.nodes:
        out.print(f"  {n.name:<10} ssh root@{n.ssh}  {n.address}", markup=False)
    out.print(f"site spec: {info.spec}", markup=False)
    out.print(f"next: forge deploy {info.spec}", markup=False)


@lab.command("down")
def down() -> None:
    """Remove the lab's containers and network.

    \b
    Example:
      forge lab down
    """
    cfg = from_env()
    labmod.down(cfg, log=lambda m: console().print(m, markup=False))


@lab.command("status")
@click.option("--json", "as_json", is_flag=True)
def status(as_json: bool) -> None:
    """Show the lab's nodes and their state (exit 4 when a node is not running).

    \b
    Example:
      forge lab status --json
    """
    from provision.errors import UnreachableError

    cfg = from_env()
    nodes = labmod.status(cfg)
    if as_json:
        emit_json([asdict(n) for n in nodes])
    else:
        out = console()
        for n in nodes:
            out.print(f"{n.name:<10} {n.state:<8} ssh {n.ssh}  {n.address}", markup=False)
    down_nodes = [n.name for n in nodes if n.state != "running"]
    if down_nodes:
        from provision.nodes import fold

        raise UnreachableError(f"lab nodes not running: {fold(down_nodes)}",
                               hint="forge lab up")

"""``forge ingest TOOL FILE...``: measurement records from tool output produced elsewhere."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click

from provision import parsers
from provision.errors import InputError
from provision.fsutil import atomic_open


@click.command("ingest")
@click.argument("tool", type=click.Choice([*parsers.names(), "auto"]), metavar="TOOL")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("--node", help="Node name for outputs that do not name their host.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the records here (atomically) instead of to stdout: JSON Lines, "
                   "or Parquet / Arrow IPC when the name ends in .parquet / .arrow.")
@click.option("--force", is_flag=True, help="Replace an existing --output file.")
@click.option("--check", "check_name", help="Check name to put in the records "
              "(default: the tool name).")
def ingest(tool: str, files: tuple[str, ...], node: str | None, output: Path | None,
           force: bool, check_name: str | None) -> None:
    """Turn tool output produced elsewhere into measurement records (JSON Lines).

    TOOL is one of the tools below, or `auto` to recognise each FILE from its
    content; FILE may be `-` for stdin. Every file is parsed before anything
    is written: one unreadable file writes nothing and exits 2.

    \b
    Tools: nccl-tests, nvidia-smi-topo, nvidia-smi-q, nvidia-smi-nvlink,
    nvidia-smi-query-gpu, ibstat, ibstatus, ibv_devinfo, perftest,
    dcgmi-diag, nvbandwidth, gpu-burn, dmesg-xid, auto.

    \b
    Example:
      forge ingest nccl-tests all_reduce.log -o nccl.jsonl
      forge ingest auto logs/*.log -o fleet.parquet
      forge ingest auto --node gpu001 ibstat.txt nvidia-smi-q.txt > gpu001.jsonl
    """
    if output is not None and output.exists() and not force:
        raise InputError(f"{output} exists", hint="pass --force to replace it")
    from provision.parsers.files import ingest_files

    lines: list[str] = []
    for name, parts in ingest_files(tool, files, node=node, check=check_name):
        for part in parts:
            where = f"{name}:{part.where}" if part.where else name
            runs = f" in {part.runs} runs" if part.runs > 1 else ""
            click.echo(f"forge ingest: {where}: {part.tool}: {len(part.lines)} records{runs}",
                       err=True)
            if part.skipped:
                shown = ", ".join(map(str, part.skipped[:10]))
                more = f" and {len(part.skipped) - 10} more" if len(part.skipped) > 10 else ""
                click.echo(f"forge ingest: {name}: lines {shown}{more} look like {part.tool} "
                           "data but do not fit its columns: kept out", err=True)
            lines.extend(part.lines)
    if output is None:
        for chunk in _chunks(lines):
            click.echo(chunk, nl=False)
        return
    from provision.measurement import format_of

    fmt = format_of(output)
    if fmt == "jsonl":
        with atomic_open(output) as fh:
            fh.writelines(_chunks(lines))
    else:
        from provision.analyze.table import write_lines
        write_lines(output, lines, fmt)
    click.echo(f"forge ingest: wrote {len(lines)} records to {output}", err=True)


def _chunks(lines: list[str], size: int = 8192) -> Iterator[str]:
    """The JSON lines as text, a few MB at a time (not one copy of the whole output)."""
    for i in range(0, len(lines), size):
        yield "\n".join(lines[i:i + size]) + "\n"

"""``forge ingest TOOL FILE...``: measurement records from tool output produced elsewhere."""

from __future__ import annotations

from pathlib import Path

import click

from provision import parsers
from provision.errors import InputError
from provision.fsutil import atomic_open
from provision.parsers.lines import JsonLines


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

    lines = JsonLines()
    notes: list[str] = []  # what each file gave, written a block at a time (not a write per file)
    try:
        for name, parts in ingest_files(tool, files, node=node, check=check_name):
            for part in parts:
                where = f"{name}:{part.where}" if part.where else name
                runs = f" in {part.runs} runs" if part.runs > 1 else ""
                notes.append(f"forge ingest: {where}: {part.tool}: {len(part.lines)} records"
                             f"{runs}")
                if part.skipped:
                    shown = ", ".join(map(str, part.skipped[:10]))
                    more = f" and {len(part.skipped) - 10} more" if len(part.skipped) > 10 else ""
                    notes.append(f"forge ingest: {name}: lines {shown}{more} look like "
                                 f"{part.tool} data but do not fit its columns: kept out")
                lines.extend(part.lines)
            if len(notes) >= _NOTES_AT_ONCE:
                _say(notes)
    finally:  # the files before one that does not read are reported before its error
        _say(notes)
    if output is None:
        for chunk in lines.encoded():
            click.echo(bytes(chunk) if isinstance(chunk, memoryview) else chunk, nl=False)
        return
    from provision.measurement import format_of

    fmt = format_of(output)
    if fmt == "jsonl":
        with atomic_open(output, binary=True) as fh:
            fh.writelines(lines.encoded())
    else:
        from provision.analyze.table import write_lines
        write_lines(output, list(lines), fmt)
    click.echo(f"forge ingest: wrote {len(lines)} records to {output}", err=True)


#: progress lines kept before they are written: 18,672 one-run logs cost 0.1 s of CPU when
#: written one by one, and a directory that size still shows progress every 1,000 files
_NOTES_AT_ONCE = 1000


def _say(notes: list[str]) -> None:
    """Write the progress lines kept so far to stderr, and forget them."""
    if notes:
        click.echo("\n".join(notes), err=True)
        notes.clear()


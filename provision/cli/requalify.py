"""``forge requalify SPEC NODE``: prove a drained node's GPUs again, then lift forge's drain.

A hardware finding (a fatal Xid, uncorrectable ECC, a GPU missing) leaves a
*sticky* drain: clean sweeps after a reboot never lift it. This command runs
the short re-qualification on the node (DCGM level 3, HBM, and an SDC burn-in
of minutes, ``acceptance.requalify_checks`` / ``--burnin-seconds``); if every
check passes it writes the node's Xid high-water mark (the hardware Xids of
this boot are accounted for), clears the sticky marks in the history store and
resumes the node if forge drained it. A failed re-qualification changes nothing.

Exit codes: 0 re-qualified, 1 a check failed, 2 bad input, 4 unreachable.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from provision.cli.check import VIAS
from provision.cli.output import console, emit_json
from provision.errors import ExitCode, InputError

if TYPE_CHECKING:
    from provision.remote.ssh import SshLauncher
    from provision.spec.model import Site

DEFAULT_CHECKS = ("dcgm", "hbm", "sdc")
#: re-qualification burn-in: minutes, not the hours of acceptance (docs/checks.md)
DEFAULT_BURNIN_S = 600.0


@click.command("requalify")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("node")
@click.option("--via", type=click.Choice(VIAS), default="ssh",
              show_default=True, help="How to reach the node for the checks.")
@click.option("--submit-host", metavar="NODE", help="Node to run srun on (--via slurm).")
@click.option("--reservation", metavar="NAME", help="Slurm reservation holding the node.")
@click.option("--checks", "checks_", metavar="NAMES",
              help=f"Comma-separated checks (default: {','.join(DEFAULT_CHECKS)}).")
@click.option("--burnin-seconds", type=float, help="SDC burn-in length (default 600).")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path),
              help="History store with the drain marks (default: FORGE_HISTORY_DB or "
                   "/var/lib/forge/history.db).")
@click.option("-o", "--output", "out", type=click.Path(file_okay=False, path_type=Path),
              help="Run directory of the checks (default: a new one under --runs-dir).")
@click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where run directories go (default ./runs or $FORGE_RUNS_DIR).")
@click.option("--dry-run", is_flag=True, help="Run the checks; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def requalify(spec: Path, node: str, via: str, submit_host: str | None,
              reservation: str | None, checks_: str | None, burnin_seconds: float | None,
              db: Path | None, out: Path | None, runs_dir: Path | None, dry_run: bool,
              as_json: bool) -> None:
    """Re-qualify NODE after a hardware drain; resume it only if every check passes.

    \b
    Example:
      forge requalify site.yaml gpu003
    """
    from provision.actions.apply import requalified
    from provision.checks import registry
    from provision.checks.service import (
        CheckRequest,
        resolve_options,
        run_checks,
        scheduler,
        scheduler_runner,
        ssh_launcher,
    )
    from provision.history.store import HistoryStore
    from provision.spec import load_site
    from provision.sweep.run import default_db, new_run_id

    if not spec.exists():
        raise InputError(f"{spec}: no such file")
    site = load_site(spec)
    target = site.node(node)
    names = [c.strip() for c in (checks_ or ",".join(
        site.acceptance_map.get("requalify_checks", DEFAULT_CHECKS))).split(",") if c.strip()]
    selected = registry.select(names, [])
    options = resolve_options(selected, {"sdc": {
        "burnin_seconds": burnin_seconds or DEFAULT_BURNIN_S}})
    req = CheckRequest(tuple(selected), (target,), via=via, submit_host=submit_host,
                       options=options, reservation=reservation, out=out, runs_dir=runs_dir)
    err = console(stderr=True)
    report, path = run_checks(site, req, spec_path=spec,
                              log=lambda m: err.print(m) if not as_json else None)
    ran = [o.check for o in report.outcomes if not o.skipped]
    doc: dict[str, object] = {"node": node, "run_dir": str(path), "checks": names,
                              "ran": ran, "passed": report.all_passed and bool(ran),
                              "counts": report.counts()}
    if report.unreachable:
        _finish(doc, as_json, "unreachable: nothing changed")
        raise click.exceptions.Exit(int(ExitCode.HOSTS_UNREACHABLE))
    if not report.all_passed or not ran:
        why = "failed" if ran else "proved nothing (every check was skipped on this node)"
        _finish(doc, as_json, f"re-qualification {why}: the drain stays")
        raise click.exceptions.Exit(int(ExitCode.CHECKS_FAILED))
    ssh = ssh_launcher(site, [target, *site.with_role("controller")])
    try:
        doc["xid_mark"] = _mark_xids(site, ssh, node, dry_run)
        ctl = site.with_role("controller")
        runner = scheduler_runner("local" if not ctl else "ssh", ssh,
                                  ctl[0].name if ctl else node)
        with HistoryStore(db or default_db()) as store:
            act = requalified(node, scheduler(site, runner), store, new_run_id("requalify"),
                              dry_run=dry_run)
    finally:
        ssh.close()
    doc["action"] = act.to_dict()
    _finish(doc, as_json, f"re-qualified: {act.action} ({act.why}) {act.outcome}".strip())


def _mark_xids(site: Site, ssh: SshLauncher, node: str, dry_run: bool) -> str:
    """Read the node's Xids of this boot and write the high-water mark (over SSH)."""
    from provision.remote.base import Command
    from provision.sweep import probes as P
    from provision.sweep.expect import for_node

    exp = for_node(site, site.node(node))
    run_one = ssh.run_one
    res = run_one(node, Command(("sh", "-s"), 30.0, P.script([P.PROBES["xid"]], exp)))
    if not res.ran:
        raise InputError(f"{node}: cannot read the kernel log: {res.detail}")
    text = res.stdout.split(P.BEGIN + " xid", 1)[-1].split(P.END, 1)[0]
    boot, count = P.xid_mark(text, exp)
    if boot is None:
        raise InputError(f"{node}: no boot id in /proc/sys/kernel/random/boot_id")
    if not dry_run:
        w = run_one(node, Command(("sh", "-c", P.xid_ack_command(boot, count)), 30.0))
        if w.returncode != 0:
            raise InputError(f"{node}: cannot write {P.XID_ACK_FILE}: "
                             f"{(w.stderr or w.detail).strip()[:200]}")
    return f"boot {boot}: {count} hardware Xid(s) accounted for"


def _finish(doc: dict[str, object], as_json: bool, line: str) -> None:
    doc["summary"] = line
    if as_json:
        emit_json(doc)
    else:
        console().print(f"{doc['node']}: {line}\nrun directory: {doc['run_dir']}")

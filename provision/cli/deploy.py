"""``forge deploy SPEC``: run the playbooks on a site, with live progress and a per-host summary."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from provision import runs
from provision.cli.output import console, emit_json
from provision.deploy.driver import DeployOptions, DeployResult
from provision.deploy.driver import deploy as run_deploy
from provision.deploy.progress import LiveView, PlainView
from provision.deploy.settings import PROFILES, Profile
from provision.deploy.summary import summary_lines
from provision.errors import DeployError, ExitCode, UnreachableError
from provision.nodes import fold


@click.command("deploy")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="Dry run: report what would change, change nothing.")
@click.option("--tags", "tags", metavar="T[,T...]", default="",
              help="Only tasks with these Ansible tags (e.g. slurm,common).")
@click.option("--nodes", "--limit", "limit", metavar="NODESET", default=None,
              help="Only these nodes, as a node set: gpu[001-004],head01 (--limit: the same, "
                   "as Ansible calls it).")
@click.option("--resume", is_flag=True,
              help="Rerun only the hosts that failed, were unreachable or never ran last time.")
@click.option("--require-hardware", is_flag=True,
              help="Fail, instead of skip, GPU/RDMA tasks on nodes without the device.")
@click.option("--ansible-settings", "profile", type=click.Choice(PROFILES), default="forge",
              show_default=True,
              help="forge: tuned, with Mitogen; forge-ssh: tuned, Ansible's ssh connection; "
                   "defaults: Ansible's own (see docs/deploy.md).")
@click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where run directories go (default ./runs or $FORGE_RUNS_DIR).")
@click.option("--playbook", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Another playbook than playbooks/site.yml.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def deploy(spec: Path, check: bool, tags: str, limit: str | None, resume: bool,
           require_hardware: bool, profile: str, runs_dir: Path | None,
           playbook: Path | None, as_json: bool) -> None:
    """Deploy the site's stack with Ansible; every run keeps runs/deploy-<time>/.

    \b
    Exit codes: 0 ok, 2 bad input, 3 a host failed, 4 a host was unreachable.
    Example:
      forge deploy site-specs/lab.yaml
      forge deploy site.yaml --nodes 'gpu[001-004]' --tags slurm
      forge deploy site.yaml --resume
    """
    opts = DeployOptions(
        spec=spec, check=check, tags=tuple(t for t in tags.split(",") if t), limit=limit,
        resume=resume, require_hardware=require_hardware,
        profile=_PROFILE_BY_NAME[profile],
        runs_root=runs_dir, playbook=playbook)
    result = run_and_report(opts, as_json=as_json, spec_label=str(spec))
    raise_for(result)


_PROFILE_BY_NAME: dict[str, Profile] = {p: p for p in PROFILES}


def run_and_report(opts: DeployOptions, *, as_json: bool = False,
                   spec_label: str = "SPEC") -> DeployResult:
    """Run with the right progress view and print the summary (used by `forge demo` too)."""
    out = console()
    view_cm: contextlib.AbstractContextManager[LiveView | PlainView | None]
    if as_json:
        view_cm = contextlib.nullcontext(None)
    elif out.is_terminal:
        view_cm = LiveView(out)
    else:
        view_cm = contextlib.nullcontext(PlainView(out))
    with view_cm as view:
        result = run_deploy(opts, view=view)
    if as_json:
        emit_json(runs.read_record(result.run_dir))
    else:
        for line in summary_lines(result, spec=spec_label):
            out.print(line, markup=False)
    return result


def raise_for(result: DeployResult) -> None:
    code = result.exit_code
    if code == ExitCode.OK:
        return
    failed, dark = result.hosts("failed"), result.hosts("unreachable")
    if code == ExitCode.HOSTS_UNREACHABLE and not failed:
        raise UnreachableError(f"unreachable: {fold(dark)}",
                               hint="bring them back, then rerun with --resume")
    what = []
    if failed:
        what.append(f"failed: {fold(failed)}")
    if dark:
        what.append(f"unreachable: {fold(dark)}")
    if result.hosts("not run"):
        what.append(f"never ran: {fold(result.hosts('not run'))}")
    error = UnreachableError if code == ExitCode.HOSTS_UNREACHABLE else DeployError
    raise error("deploy did not complete; " + "; ".join(what or [
        f"ansible-playbook exited {result.ansible_rc}"]),
        hint=f"details in {result.run_dir}; rerun with --resume")

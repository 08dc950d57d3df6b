"""Run a deploy: spec -> run directory + inventory -> ansible-runner -> per-host results.

The only module that starts ansible-runner. It never prints: progress goes
to a view object, and the result is returned for the CLI to report.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from provision import runs
from provision.deploy import resume, rundir, settings
from provision.deploy.events import HostResult, Tracker
from provision.errors import DeployError, ExitCode, InputError, combine
from provision.fsutil import atomic_write_text
from provision.paths import node_programs_dir, playbooks_dir

STDOUT_TAIL = 15


class View(Protocol):
    def event(self, event: Mapping[str, Any], tracker: Tracker) -> None: ...


@dataclass(frozen=True)
class DeployOptions:
    spec: Path
    check: bool = False
    tags: tuple[str, ...] = ()
    limit: str | None = None
    resume: bool = False
    require_hardware: bool = False
    profile: settings.Profile = "forge"
    playbook: Path | None = None       # None: the site playbook of forge's home
    runs_root: Path | None = None
    extravars: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeployResult:
    run_dir: Path
    targets: tuple[str, ...]
    results: tuple[HostResult, ...]
    ansible_rc: int
    status: str
    seconds: float
    resumed_from: Path | None = None

    def hosts(self, *outcomes: str) -> list[str]:
        return [r.host for r in self.results if r.outcome in outcomes]

    @property
    def changed(self) -> int:
        return sum(r.changed for r in self.results)

    @property
    def exit_code(self) -> ExitCode:
        return combine([
            ExitCode.DEPLOY_FAILED if self.hosts("failed", "not run") or self.ansible_rc != 0
            else ExitCode.OK,
            ExitCode.HOSTS_UNREACHABLE if self.hosts("unreachable") else ExitCode.OK])


def _targets(site: Any, opts: DeployOptions, root: Path) -> tuple[list[str], Path | None,
                                                                   DeployOptions]:
    names = [n.name for n in site.select(opts.limit)]
    if not opts.resume:
        return names, None, opts
    plan = resume.plan(root, site.name)
    wanted = set(names)
    hosts = [h for h in plan.hosts if h in wanted]
    previous = plan.options
    merged = DeployOptions(
        spec=opts.spec, check=bool(previous.get("check")) or opts.check,
        tags=tuple(previous.get("tags") or ()) or opts.tags, limit=opts.limit, resume=True,
        require_hardware=opts.require_hardware, profile=opts.profile,
        playbook=Path(previous["playbook"]) if previous.get("playbook") else opts.playbook,
        runs_root=opts.runs_root, extravars=opts.extravars)
    return hosts, plan.previous, merged


def deploy(opts: DeployOptions, *, view: View | None = None,
           on_event: Callable[[Mapping[str, Any]], None] | None = None) -> DeployResult:
    """Run the playbook on the site; a failed host is a result, not an exception."""
    import ansible_runner.interface

    from provision.inventory import render_inventory
    from provision.inventory.render import spec_json
    from provision.spec import load_site

    started = time.monotonic()
    spec_path = Path(opts.spec)
    site = load_site(spec_path)
    _check_vault_password_file()
    playbook = Path(opts.playbook or playbooks_dir() / "site.yml").resolve()
    if not playbook.is_file():
        raise InputError(f"playbook {playbook} does not exist",
                         hint="--playbook names another; forge --home DIR (or FORGE_HOME) "
                              "points at a site's own copy of forge's playbooks")
    root = runs.runs_root(opts.runs_root).resolve()
    targets, resumed_from, opts = _targets(site, opts, root)
    run = runs.Run.create("deploy", root=root, site=site.name,
                          spec=str(spec_path.resolve()), targets=targets,
                          resumed_from=str(resumed_from) if resumed_from else None)
    run_dir = run.path
    if resumed_from is not None and not targets:
        run.finish(0, status="nothing to resume", results=[])
        return DeployResult(run_dir, (), (), 0, "nothing to resume", 0.0, resumed_from)

    run.keep_spec(spec_path)  # byte for byte as given (the parsed text is site.text)
    run.write_text("spec.json", spec_json(site) + "\n")
    inventory = run_dir / "inventory"
    render_inventory(site, inventory)
    env = settings.environment(opts.profile, hosts=len(targets), cache_dir=root / ".fact-cache",
                               roles_path=playbooks_dir() / "roles",
                               mitogen_dir=settings.mitogen_strategy_dir())
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    atomic_write_text(run_dir / "ansible-env.json",
                      __import__("json").dumps({k: v for k, v in env.items() if k != "PATH"},
                                               indent=2, sort_keys=True) + "\n")
    extravars = dict(opts.extravars)
    # where acceptance_tools copies the node-side programs from (a checkout or a wheel)
    extravars.setdefault("forge_node_programs_dir", f"{node_programs_dir()}/")
    if opts.require_hardware:
        extravars["forge_require_hardware"] = True
    limited = opts.limit is not None or resumed_from is not None
    run.update(playbook=str(playbook), profile=opts.profile,
               strategy=settings.strategy_of(env), limit=opts.limit, tags=list(opts.tags),
               check=opts.check, require_hardware=opts.require_hardware)

    tracker = Tracker(targets)

    def handle(event: Mapping[str, Any]) -> bool:
        tracker.feed(event)
        if view is not None:
            view.event(event, tracker)
        if on_event is not None:
            on_event(event)
        return True

    try:
        runner = ansible_runner.interface.init_runner(
            private_data_dir=str(run_dir), ident="ansible", playbook=str(playbook),
            inventory=str(inventory), envvars=env, extravars=extravars or None,
            limit=",".join(targets) if limited else None,
            tags=",".join(opts.tags) if opts.tags else None,
            cmdline="--check" if opts.check else None,
            event_handler=handle, quiet=True, rotate_artifacts=0, suppress_env_files=True,
        )
        runner.config.env = settings.scrubbed(runner.config.env, host_env=dict(os.environ),
                                              own=env)
        runner.run()
    except KeyboardInterrupt:
        run.finish(int(ExitCode.INTERRUPTED), status="interrupted",
                   results=rundir.result_dicts(tracker.results()))
        raise
    results = tracker.results()
    rundir.write_host_logs(run_dir, {h: hp.log for h, hp in tracker.hosts.items()})
    seconds = round(time.monotonic() - started, 2)
    result = DeployResult(run_dir, tuple(targets), tuple(results), int(runner.rc or 0),
                          str(runner.status), seconds, resumed_from)
    stopped = tracker.stats is None and runner.rc != 0
    run.finish(int(ExitCode.DEPLOY_FAILED if stopped else result.exit_code),
               status=str(runner.status), ansible_rc=runner.rc, stats=tracker.stats,
               results=rundir.result_dicts(results))
    if stopped:
        raise DeployError(f"ansible-playbook stopped before running any host "
                          f"(exit {runner.rc}): {_stdout_tail(run_dir)}",
                          hint=f"full output: {run_dir / 'artifacts/ansible/stdout'}")
    return result


def _check_vault_password_file() -> None:
    """A vault password file that is not there is bad input (2), not a failed deploy (3)."""
    name = os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE")
    if name and not Path(name).expanduser().is_file():
        raise InputError(f"ANSIBLE_VAULT_PASSWORD_FILE={name}: no such file",
                         hint="point it at the file holding the vault password, or unset it")


def _stdout_tail(run_dir: Path) -> str:
    path = run_dir / "artifacts" / "ansible" / "stdout"
    try:
        lines = [ln for ln in path.read_text(encoding="utf-8", errors="replace").splitlines()
                 if ln.strip()]
    except FileNotFoundError:
        return "no output"
    return " | ".join(lines[-STDOUT_TAIL:])


def ansible_available() -> bool:
    return shutil.which("ansible-playbook", path=os.path.dirname(sys.executable)
                        + os.pathsep + os.environ.get("PATH", "")) is not None

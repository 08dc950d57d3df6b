"""`forge bmc`: inventory, firmware and BIOS audits, power, boot and virtual media over Redfish."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from provision.bmc.model import BmcOptions, BmcTarget, Timeouts
from provision.errors import InputError


@dataclass(frozen=True)
class _Run:
    site: Any
    targets: list[BmcTarget]
    opts: BmcOptions
    as_json: bool

    def emit(self, payload: dict[str, Any] | None, lines: Sequence[str]) -> None:
        """Print the report; the password is scrubbed from whatever a BMC sent back."""
        from provision.bmc.client import redact

        secrets = (self.opts.credentials.password,)
        if self.as_json:
            text = json.dumps(payload, indent=2, sort_keys=True, default=str)
        else:
            text = "\n".join(lines)
        if text:
            click.echo(redact(text, secrets))


def _prepare(spec: Path, nodes: str | None, as_json: bool, insecure: bool,
             timeout: float, concurrency: int) -> _Run:
    from provision.bmc.targets import options_from_site, targets_from_site
    from provision.secrets import resolve
    from provision.spec import load_site

    if timeout <= 0:
        raise InputError(f"--timeout: must be positive, got {timeout:g}")
    if concurrency < 1:
        raise InputError(f"--concurrency: must be at least 1, got {concurrency}")
    site = load_site(spec)
    targets = targets_from_site(site, nodes)
    if site.bmc.password is None:
        raise InputError("bmc.password is not set in the site spec",
                         hint="bmc: {password: {env: FORGE_BMC_PASSWORD}}")
    password = resolve(site.bmc.password, base_dir=site.base_dir)
    if not password:
        raise InputError(f"bmc.password: secret {site.bmc.password.describe()} is empty")
    t = Timeouts(node_deadline_s=timeout, concurrency=concurrency,
                 read_s=min(Timeouts().read_s, timeout), connect_s=min(Timeouts().connect_s,
                                                                        timeout))
    opts = options_from_site(site, password=password, insecure=insecure, timeouts=t)
    return _Run(site, targets, opts, as_json)


def _common(default_timeout: float) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def deco(f: Callable[..., Any]) -> Callable[..., Any]:
        f = click.option("--concurrency", type=int, default=32, show_default=True,
                         help="BMCs worked on at once.")(f)
        f = click.option("--timeout", type=float, default=default_timeout, show_default=True,
                         help="Deadline per node for the whole operation, seconds.")(f)
        f = click.option("--insecure", is_flag=True,
                         help="Do not verify the BMC's TLS certificate (nor require https).")(f)
        f = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(f)
        f = click.option("--nodes", metavar="NODESET",
                         help="Only these nodes, e.g. gpu[001-004].")(f)
        f = click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))(f)
        return f
    return deco


@click.group("bmc")
def bmc() -> None:
    """Day 0 on the BMCs (Redfish): inventory, firmware and BIOS audits, power, boot, media.

    \b
    Exit codes: 0 ok, 1 mismatch / firmware or BIOS differs / BMC could not do it,
    2 bad input, wrong credentials or untrusted certificate, 4 BMC unreachable,
    124 new state not reported before --timeout.
    Example:
      forge bmc inventory site.yaml --nodes 'gpu[001-004]'
    """


@bmc.command("inventory")
@_common(60.0)
@click.option("--write-macs", "write_macs", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the MACs the BMCs report to this new YAML file (node_data shape).")
@click.option("--update-spec", is_flag=True,
              help="Add MACs the spec lacks into SPEC itself (keeps SPEC.bak-<time>).")
@click.option("--force", is_flag=True, help="With --write-macs: replace an existing file.")
@click.option("--strict", is_flag=True,
              help="Count values the BMC does not expose (unverified) as mismatches.")
def inventory(spec: Path, nodes: str | None, as_json: bool, insecure: bool, timeout: float,
              concurrency: int, write_macs: Path | None, update_spec: bool, force: bool,
              strict: bool) -> None:
    """Read each node's hardware over Redfish and compare it with the spec.

    \b
    Example:
      forge bmc inventory site.yaml --write-macs macs.yaml
    """
    from provision.bmc.compare import compare, discovered_macs
    from provision.bmc.fanout import fan_out
    from provision.bmc.inventory import inventory_work
    from provision.bmc.macs import update_spec as do_update
    from provision.bmc.macs import write_macs_file
    from provision.bmc.report import failure_error, inventory_json, inventory_text

    if write_macs and update_spec:
        raise InputError("--write-macs and --update-spec: choose one")
    run = _prepare(spec, nodes, as_json, insecure, timeout, concurrency)
    outcomes = fan_out(run.targets, inventory_work(run.opts), run.opts)
    expected = {t.node: t.expected for t in run.targets}
    findings = {o.node: compare(o.value, expected[o.node])
                for o in outcomes if o.value is not None}
    if strict:
        findings = {n: [f.__class__(f.node, f.field, f.expected, f.actual, "mismatch")
                        for f in fs] for n, fs in findings.items()}
    notes: list[str] = []
    found = {o.node: discovered_macs(o.value) for o in outcomes if o.value is not None}
    if write_macs:
        write_macs_file(write_macs, run.site.name, found, replace=force)
        notes.append(f"wrote MACs of {sum(1 for m in found.values() if m)} nodes to {write_macs}")
    if update_spec:
        backup, added = do_update(spec, found, text=run.site.text)
        notes.append(f"added {added} MACs to {spec} (backup {backup})" if added
                     else f"{spec} already lists every MAC the BMCs report; not changed")
    payload = inventory_json(outcomes, findings)
    run.emit(payload, inventory_text(outcomes, findings) + notes)
    if notes and as_json:
        click.echo("\n".join(notes), err=True)
    mismatches = payload["summary"]["differences"]
    err = failure_error(outcomes, mismatches, "mismatches with the spec")
    if err:
        raise err


@bmc.command("firmware")
@_common(60.0)
@click.option("--strict", is_flag=True,
              help="Count components the BMC does not report as differences.")
def firmware(spec: Path, nodes: str | None, as_json: bool, insecure: bool, timeout: float,
             concurrency: int, strict: bool) -> None:
    """Audit firmware versions against bmc.firmware_baseline, grouped by node set.

    \b
    Example:
      forge bmc firmware site.yaml --json
    """
    from provision.bmc.fanout import fan_out
    from provision.bmc.firmware import audit_node
    from provision.bmc.inventory import inventory_work
    from provision.bmc.report import failure_error, firmware_json, firmware_text
    from provision.bmc.targets import baseline_from_site

    run = _prepare(spec, nodes, as_json, insecure, timeout, concurrency)
    baseline = baseline_from_site(run.site)
    outcomes = fan_out(run.targets, inventory_work(run.opts), run.opts)
    audits = [a for o in outcomes if o.value is not None for a in audit_node(o.value, baseline)]
    run.emit(firmware_json(outcomes, audits, baseline), firmware_text(outcomes, audits))
    bad_states = {"differs", "unverified"} if strict else {"differs"}
    differs = len({a.node for a in audits if a.state in bad_states})
    err = failure_error(outcomes, differs, "nodes off the firmware baseline")
    if err:
        raise err


@bmc.command("bios")
@_common(60.0)
@click.option("--strict", is_flag=True,
              help="Count settings the BMC does not report as differences.")
@click.option("--show", is_flag=True,
              help="Print every BIOS attribute instead, nodes folded by value (to write "
                   "bmc.bios_baseline from a node known to be good, or to see drift).")
def bios(spec: Path, nodes: str | None, as_json: bool, insecure: bool, timeout: float,
         concurrency: int, strict: bool, show: bool) -> None:
    """Audit UEFI settings against bmc.bios_baseline and the profile's operating mode.

    Reads Systems/<id>/Bios and the changes staged for the next boot; a staged value
    off the baseline differs now. Nothing is changed on the nodes.

    \b
    Example:
      forge bmc bios site.yaml --nodes gpu001 --show
      forge bmc bios site.yaml --json
    """
    from provision.bmc.bios import audit_node, bios_work
    from provision.bmc.fanout import fan_out
    from provision.bmc.report import (
        bios_json,
        bios_show_json,
        bios_show_text,
        bios_text,
        failure_error,
    )
    from provision.bmc.targets import bios_wanted

    run = _prepare(spec, nodes, as_json, insecure, timeout, concurrency)
    wanted = bios_wanted(run.site, nodes)
    if not show and not any(wanted.values()):
        raise InputError("nothing to audit: no bmc.bios_baseline and no operating_mode in "
                         "the nodes' profiles",
                         hint="write the baseline from a good node: "
                              "forge bmc bios SPEC --nodes NODE --show")
    outcomes = fan_out(run.targets, bios_work(run.opts), run.opts)
    if show:
        run.emit(bios_show_json(outcomes), bios_show_text(outcomes))
        err = failure_error(outcomes, 0, "")
    else:
        audits = [a for o in outcomes if o.value is not None
                  for a in audit_node(o.value, wanted[o.node])]
        bad_states = {"differs", "unverified"} if strict else {"differs"}
        differs = len({a.node for a in audits if a.state in bad_states})
        run.emit(bios_json(outcomes, audits, differs), bios_text(outcomes, audits))
        err = failure_error(outcomes, differs, "nodes off the BIOS baseline")
    if err:
        raise err


def _act(run: _Run, kind: str, work: Any) -> None:
    from provision.bmc.fanout import fan_out
    from provision.bmc.report import action_json, action_text, failure_error

    outcomes = fan_out(run.targets, work, run.opts)
    run.emit(action_json(kind, outcomes), action_text(outcomes))
    err = failure_error(outcomes, 0, "")
    if err:
        raise err


@bmc.command("power")
@_common(180.0)
@click.argument("action", type=click.Choice(["on", "off", "cycle", "status"]))
@click.option("--graceful", is_flag=True, help="off: ask the OS to shut down (no force).")
def power(spec: Path, nodes: str | None, as_json: bool, insecure: bool, timeout: float,
          concurrency: int, action: str, graceful: bool) -> None:
    """Power nodes on/off/cycle (waiting for the new state) or show their power state.

    \b
    Example:
      forge bmc power site.yaml cycle --nodes gpu003
    """
    from provision.bmc.actions import power_work

    run = _prepare(spec, nodes, as_json, insecure, timeout, concurrency)
    _act(run, "power", power_work(run.opts, action, graceful))  # type: ignore[arg-type]


@bmc.command("boot")
@_common(120.0)
@click.argument("device", type=click.Choice(["pxe", "cd", "disk"]))
@click.option("--once", is_flag=True, help="Only for the next boot (default: until changed).")
def boot(spec: Path, nodes: str | None, as_json: bool, insecure: bool, timeout: float,
         concurrency: int, device: str, once: bool) -> None:
    """Set the boot source override and wait until the BMC reports it.

    \b
    Example:
      forge bmc boot site.yaml pxe --once --nodes 'gpu[001-004]'
    """
    from provision.bmc.actions import boot_work

    run = _prepare(spec, nodes, as_json, insecure, timeout, concurrency)
    _act(run, "boot", boot_work(run.opts, device, once))  # type: ignore[arg-type]


@bmc.command("media")
@_common(300.0)
@click.argument("action", type=click.Choice(["insert", "eject"]))
@click.argument("url", required=False)
def media(spec: Path, nodes: str | None, as_json: bool, insecure: bool, timeout: float,
          concurrency: int, action: str, url: str | None) -> None:
    """Insert an installer image URL as virtual CD, or eject it.

    \b
    Example:
      forge bmc media site.yaml insert http://10.10.0.10/images/installer.iso
    """
    from provision.bmc.actions import check_image_url, media_work

    if action == "insert":
        if not url:
            raise InputError("media insert: give the image URL")
        check_image_url(url)
    elif url:
        raise InputError("media eject takes no URL")
    run = _prepare(spec, nodes, as_json, insecure, timeout, concurrency)
    _act(run, "media", media_work(run.opts, action, url))  # type: ignore[arg-type]

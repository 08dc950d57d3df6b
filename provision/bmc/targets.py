"""From the site spec to BMC targets and connection options (the one module reading the spec)."""

from __future__ import annotations

from typing import Any

from provision.bmc.bios import Wanted, attribute_text, wanted_settings
from provision.bmc.client import normalize_fingerprint
from provision.bmc.firmware import validate_baseline
from provision.bmc.model import BmcOptions, BmcTarget, Credentials, Expected, Timeouts, TlsPolicy
from provision.errors import InputError


def split_address(address: str, where: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address."""
    text = address.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    if not host:
        raise InputError(f"{where}: empty host in BMC address {address!r}")
    if port:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise InputError(f"{where}: invalid port in BMC address {address!r}")
        return host, int(port)
    return host, None


def expected_for(node: Any) -> Expected:
    profile = node.profile
    gpu = getattr(profile, "gpu", None)
    per_model: dict[str, int] = {}
    for nic in getattr(profile, "nics", ()):
        per_model[nic.model] = per_model.get(nic.model, 0) + nic.count
    return Expected(
        serial=node.serial,
        macs=tuple((name, mac.lower()) for name, mac in node.macs),
        gpu_count=(gpu.count if gpu is not None and not getattr(profile, "fake_gpus", 0)
                   else None),
        gpu_model=gpu.model if gpu is not None else None,
        nics=tuple(per_model.items()),
    )


def targets_from_site(site: Any, nodes: str | None = None) -> list[BmcTarget]:
    """Targets for the selected nodes; a node without a BMC address is an input error."""
    selected = site.select(nodes)
    missing = [n.name for n in selected if not n.bmc_address]
    if missing:
        from provision.nodes import fold

        raise InputError(f"no bmc_address for {fold(missing)}",
                         hint="give addresses.bmc in the node group, "
                              "or node_data.<node>.bmc_address")
    targets = []
    for n in selected:
        host, port = split_address(n.bmc_address, f"{n.name}.bmc_address")
        targets.append(BmcTarget(n.name, host, port, expected_for(n)))
    return targets


def options_from_site(site: Any, *, password: str, insecure: bool = False,
                      timeouts: Timeouts | None = None) -> BmcOptions:
    bmc = site.bmc
    pinned = normalize_fingerprint(bmc.pinned_sha256) if bmc.pinned_sha256 else None
    if bmc.scheme == "http" and not insecure:
        raise InputError("bmc.scheme: http sends the BMC password in clear text",
                         hint="use https (the default), or pass --insecure to accept it")
    tls = TlsPolicy(verify=bool(bmc.verify_tls) and not insecure, ca_bundle=bmc.ca_bundle,
                    pinned_sha256=pinned, insecure=insecure)
    if not tls.insecure and not bmc.verify_tls and not pinned:
        raise InputError("bmc.verify_tls is false but no pinned_sha256 is given",
                         hint="pin the certificate (bmc.pinned_sha256), give bmc.ca_bundle, "
                              "or pass --insecure explicitly")
    return BmcOptions(Credentials(bmc.username, password), scheme=bmc.scheme, tls=tls,
                      timeouts=timeouts or Timeouts())


def baseline_from_site(site: Any) -> dict[str, str]:
    baseline = validate_baseline(dict(site.bmc.firmware_baseline))
    if not baseline:
        raise InputError("bmc.firmware_baseline is empty: nothing to audit against",
                         hint="e.g. bmc: {firmware_baseline: {xcc: ..., uefi: ..., "
                              "gpu_vbios: ..., connectx: ...}}")
    return baseline


def bios_wanted(site: Any, nodes: str | None = None) -> dict[str, tuple[Wanted, ...]]:
    """Per selected node: ``bmc.bios_baseline``, and its profile's operating mode."""
    baseline = {str(k): attribute_text(v) for k, v in site.bmc.bios_baseline}
    return {n.name: wanted_settings(baseline, n.profile.operating_mode or None,
                                    n.profile.name)
            for n in site.select(nodes)}

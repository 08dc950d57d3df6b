"""Power, boot override and virtual media, each waiting until the BMC reports the new state.

BMCs apply these asynchronously (an XCC takes seconds to power a node; the
sushy-tools fake driver 1-11 s), so an accepted request is not a result: every
action polls the resource until it shows the requested state or the node's
deadline passes, which is reported as a failure, not as done.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlparse

import sushy
from sushy import exceptions as sushy_exc

from provision.bmc.client import BmcFailure, session, with_busy_retry
from provision.bmc.inventory import enum_text, select_system
from provision.bmc.model import BmcOptions, BmcTarget, Status
from provision.errors import InputError

PowerAction = Literal["on", "off", "cycle", "status"]
BootDevice = Literal["pxe", "cd", "disk"]

_BOOT_TARGETS = {"pxe": sushy.BootSource.PXE, "cd": sushy.BootSource.CD,
                 "disk": sushy.BootSource.HDD}
POLL_S = 0.5


@dataclass(frozen=True)
class ActionResult:
    """What the BMC reports after the action (``detail`` notes a quirk worth telling)."""

    state: str
    changed: bool
    detail: str = ""


def _wait(check: Callable[[], bool], deadline: float, what: str) -> None:
    while True:
        if check():
            return
        if time.monotonic() + POLL_S >= deadline:
            raise BmcFailure(Status.TIMEOUT, f"BMC did not report {what} before the deadline")
        time.sleep(POLL_S)


def _power(system: Any) -> str:
    system.refresh(force=True)
    return enum_text(system.power_state) or "unknown"


def power(system: Any, action: PowerAction, opts: BmcOptions, deadline: float,
          graceful: bool = False) -> ActionResult:
    state = _power(system)
    if action == "status":
        return ActionResult(state, False)
    if action == "on":
        if state == "On":
            return ActionResult(state, False)
        with_busy_retry(lambda: system.reset_system(sushy.ResetType.ON), opts, deadline)
        _wait(lambda: _power(system) == "On", deadline, "power On")
        return ActionResult("On", True)
    if action == "off":
        if state == "Off":
            return ActionResult(state, False)
        reset = sushy.ResetType.GRACEFUL_SHUTDOWN if graceful else sushy.ResetType.FORCE_OFF
        with_busy_retry(lambda: system.reset_system(reset), opts, deadline)
        _wait(lambda: _power(system) == "Off", deadline, "power Off")
        return ActionResult("Off", True)
    # cycle: a node that is off is simply powered on
    reset = sushy.ResetType.ON if state == "Off" else sushy.ResetType.FORCE_RESTART
    with_busy_retry(lambda: system.reset_system(reset), opts, deadline)
    _wait(lambda: _power(system) == "On", deadline, "power On after the cycle")
    return ActionResult("On", True, "was Off: powered on" if state == "Off" else "")


def boot(system: Any, device: BootDevice, once: bool, opts: BmcOptions,
         deadline: float) -> ActionResult:
    target = _BOOT_TARGETS[device]
    enabled = (sushy.BootSourceOverrideEnabled.ONCE if once
               else sushy.BootSourceOverrideEnabled.CONTINUOUS)
    with_busy_retry(lambda: system.set_system_boot_options(target, enabled=enabled),
                    opts, deadline)

    def reported() -> tuple[str | None, str | None]:
        system.refresh(force=True)
        return (enum_text(system.boot.target), enum_text(system.boot.enabled))

    _wait(lambda: reported()[0] == target.value, deadline, f"boot target {target.value}")
    got_target, got_enabled = reported()
    detail = ""
    if got_enabled != enabled.value:
        # sushy-tools stores Once but reports Continuous; some BMC firmware does the same
        detail = f"requested {enabled.value}, BMC reports {got_enabled}"
    return ActionResult(f"{got_target} ({got_enabled})", True, detail)


def check_image_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InputError(f"image URL {url!r}: expected an http:// or https:// URL the BMC "
                         "can download")
    return url


def _cd_device(root: sushy.Sushy, system: Any) -> Any:
    """The CD/DVD virtual media slot: under the System (newer) or its Manager (XCC)."""
    collections = []
    with contextlib.suppress(sushy_exc.MissingAttributeError):
        collections.append(system.virtual_media)
    with contextlib.suppress(sushy_exc.MissingAttributeError):
        collections.extend(m.virtual_media for m in system.managers)
    for coll in collections:
        try:
            members = coll.get_members()
        except (sushy_exc.MissingAttributeError, sushy_exc.ResourceNotFoundError):
            continue
        for vm in members:
            types = {enum_text(t) for t in (vm.media_types or [])}
            if types & {"CD", "DVD"}:
                return vm
    raise BmcFailure(Status.ERROR, "BMC exposes no CD/DVD virtual media slot")


def media(root: sushy.Sushy, system: Any, action: Literal["insert", "eject"],
          url: str | None, opts: BmcOptions, deadline: float) -> ActionResult:
    vm = _cd_device(root, system)

    def state() -> tuple[bool, str | None]:
        vm.refresh(force=True)
        return bool(vm.inserted), vm.image

    if action == "insert":
        assert url is not None
        inserted, image = state()
        if inserted and image == url:
            return ActionResult(f"inserted {url}", False)
        if inserted:
            with_busy_retry(vm.eject_media, opts, deadline)
            _wait(lambda: not state()[0], deadline, "the old image ejected")
        with_busy_retry(lambda: vm.insert_media(url, inserted=True, write_protected=True),
                        opts, deadline)
        _wait(lambda: state() == (True, url), deadline, f"image {url} inserted")
        return ActionResult(f"inserted {url}", True)
    inserted, image = state()
    if not inserted:
        return ActionResult("empty", False)
    with_busy_retry(vm.eject_media, opts, deadline)
    _wait(lambda: not state()[0], deadline, "the image ejected")
    return ActionResult("empty", True, f"ejected {image}")


def power_work(opts: BmcOptions, action: PowerAction, graceful: bool = False,
               ) -> Callable[[BmcTarget, float], ActionResult]:
    def work(target: BmcTarget, deadline: float) -> ActionResult:
        with session(target, opts, deadline) as root:
            return power(select_system(root, target.node), action, opts, deadline, graceful)
    return work


def boot_work(opts: BmcOptions, device: BootDevice, once: bool,
              ) -> Callable[[BmcTarget, float], ActionResult]:
    def work(target: BmcTarget, deadline: float) -> ActionResult:
        with session(target, opts, deadline) as root:
            return boot(select_system(root, target.node), device, once, opts, deadline)
    return work


def media_work(opts: BmcOptions, action: Literal["insert", "eject"], url: str | None,
               ) -> Callable[[BmcTarget, float], ActionResult]:
    def work(target: BmcTarget, deadline: float) -> ActionResult:
        with session(target, opts, deadline) as root:
            return media(root, select_system(root, target.node), action, url, opts, deadline)
    return work

"""The common role's boot program forge-acs-disable, run by sh on a sysfs tree made here.

No PCI bus here: ``setpci`` is a stand-in (named as such) that keeps each bridge's ACS
Control in a file, refusing writes to a "locked" bridge as a kernel in lockdown does. What
is asserted is the program's own behaviour: which bridges it clears, and that a clear that
did not take fails it (exit 1, naming the bridge) instead of passing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

PROGRAM = (Path(__file__).resolve().parents[2] / "playbooks" / "roles" / "common" / "files"
           / "forge-acs-disable")
FAKE_SETPCI = r"""#!/bin/sh
# stand-in for setpci -s BDF ECAP_ACS+0x6.w[=VALUE]: the register lives in $ACS_STATE/BDF
bdf=$2; reg=$ACS_STATE/$bdf
[ -f "$reg" ] || { echo "setpci: no ECAP_ACS" >&2; exit 1; }
case "$3" in
  *=*) [ -f "$reg.locked" ] && { echo "setpci: Operation not permitted" >&2; exit 1; }
       echo "${3#*=}" > "$reg" ;;
  *) cat "$reg" ;;
esac
"""


def _tree(tmp_path: Path, locked: bool = False) -> tuple[dict[str, str], Path]:
    devices, state, bin_dir = tmp_path / "devices", tmp_path / "state", tmp_path / "bin"
    for d in (devices, state, bin_dir):
        d.mkdir()
    for bdf, cls, acs in (("0000:00:01.1", "0x060400", "001d"),   # root port, redirect on
                          ("0000:02:00.0", "0x060400", "0000"),   # switch port, already off
                          ("0000:03:00.0", "0x060400", None),     # bridge without ACS
                          ("0000:04:00.0", "0x030200", "001d")):  # a GPU: not a bridge
        (devices / bdf).mkdir()
        (devices / bdf / "class").write_text(cls + "\n")
        if acs is not None:
            (state / bdf).write_text(acs + "\n")
    if locked:
        (state / "0000:00:01.1.locked").touch()
    setpci = bin_dir / "setpci"
    setpci.write_text(FAKE_SETPCI)
    setpci.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
           "FORGE_PCI_DEVICES": str(devices), "ACS_STATE": str(state)}
    return env, state


def test_clears_the_bridges_that_redirect_and_nothing_else(tmp_path: Path) -> None:
    env, state = _tree(tmp_path)
    done = subprocess.run(["sh", str(PROGRAM)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "0000:00:01.1 ACSCtl 001d -> 0000" in done.stdout
    assert "1 bridge(s) changed" in done.stdout
    assert (state / "0000:00:01.1").read_text().strip() == "0000"
    assert (state / "0000:04:00.0").read_text().strip() == "001d"   # the GPU is left alone


def test_a_write_that_does_not_take_fails_the_unit(tmp_path: Path) -> None:
    env, state = _tree(tmp_path, locked=True)
    done = subprocess.run(["sh", str(PROGRAM)], env=env, capture_output=True, text=True)
    assert done.returncode == 1
    assert "0000:00:01.1 ACSCtl 001d: the write did not take (reads 001d)" in done.stderr
    assert "ACS still on at 0000:00:01.1; kernel lockdown:" in done.stderr
    assert (state / "0000:00:01.1").read_text().strip() == "001d"

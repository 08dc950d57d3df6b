"""What `forge` imports to start: the modules a command does not need stay unimported.

Functional, not timed: each command runs as its own process under ``python -X
importtime``, and the test reads the names of the modules it imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMALL = ROOT / "site-specs" / "small.yaml"


def imported(*args: str) -> set[str]:
    """The modules ``forge ARGS`` imports (it must succeed)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "provision", *args],
                          capture_output=True, text=True, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    names = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines()
             if line.startswith("import time:") and "|" in line}
    assert "provision.cli.main" in names, "no -X importtime lines read"
    return names


def _families(names: set[str], *tops: str) -> list[str]:
    return sorted(n for n in names if n.split(".")[0] in tops)


def test_validate_of_the_small_example_imports_only_what_it_needs() -> None:
    names = imported("validate", str(SMALL))
    assert "provision.spec.build" in names
    # ClusterShell: plain node sets expand without it; json: only --json prints it;
    # socket.py: the address allocator takes socket's C functions; the rest: other commands
    assert _families(names, "ClusterShell", "json", "socket", "rich", "jinja2", "jsonschema",
                     "numpy") == []


def test_a_node_set_beyond_the_plain_forms_still_reaches_clustershell(tmp_path: Path) -> None:
    """The positive control: the same check sees ClusterShell where a spec needs it."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(SMALL.read_text().replace("gpu[001-004]", "gpu[001-002],gpu00[3-4]"))
    assert "ClusterShell.NodeSet" in imported("validate", str(spec))


def test_the_garbage_collector_waits_only_for_start_up() -> None:
    """Paused while `forge` imports, running again before any command's own work."""
    probe = ("import gc, sys; sys.argv = ['forge']; import provision.cli.main as m; "
             "print(gc.isenabled()); m.cli.get_command(None, 'validate'); print(gc.isenabled())")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    assert done.stdout.split() == ["False", "True"]


@pytest.mark.parametrize("argv0, program", [
    ("/usr/local/bin/forge", True), ("/venv/lib/python3.11/site-packages/provision/__main__.py", True),
    ("/venv/lib/python3.11/site-packages/pytest/__main__.py", False), ("/usr/bin/ipython", False)])
def test_only_forge_itself_is_the_program(argv0: str, program: bool) -> None:
    """`python -m pytest` (or any other program) importing forge keeps its own collector,
    signal handlers and environment."""
    probe = (f"import gc, os, sys; sys.argv = [{argv0!r}]; import provision.cli.main; "
             "print(gc.isenabled(), os.environ.get('OPENBLAS_NUM_THREADS'))")
    clean = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, cwd=ROOT, env=clean)
    assert done.stdout.split() == (["False", "1"] if program else ["True", "None"])


def _threads_after_numpy(as_program: bool, **env: str) -> int:
    """Threads of a process that imports provision.cli.main (as `forge` or as a library),
    then numpy: numpy's OpenBLAS adds its own at import unless told to use one."""
    probe = (f"import os, sys; sys.argv = [{'forge' if as_program else 'x'!r}]; "
             "import provision.cli.main; import numpy; print(len(os.listdir('/proc/self/task')))")
    clean = {k: v for k, v in os.environ.items()
             if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "GOTO_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, cwd=ROOT, env={**clean, **env})
    return int(done.stdout)


def test_the_forge_program_starts_no_blas_threads() -> None:
    """numpy's OpenBLAS spins one thread per CPU at import; forge does no BLAS work."""
    if not Path("/proc/self/task").is_dir():
        pytest.skip("needs /proc to count threads")
    as_library = _threads_after_numpy(False)
    if as_library == 1:
        pytest.skip(f"numpy starts no BLAS threads here ({os.cpu_count()} CPU): nothing to show")
    assert _threads_after_numpy(True) == 1
    # a value the user set is theirs
    assert _threads_after_numpy(True, OPENBLAS_NUM_THREADS="2") == 2

"""Where forge's non-Python assets live: playbooks and roles, inventory templates,
example site specs and the node-side programs' directory.

The one module that knows. In order:

1. ``FORGE_HOME`` (or ``forge --home DIR``): a site's own copy, laid out like a
   checkout (``playbooks/``, ``inventory/templates/``, ...);
2. the copy a wheel carries in ``provision/_assets/`` (``setup.py`` puts it
   there at build time, from the same directories of the checkout);
3. the checkout this package was imported from (an editable install).
"""

from __future__ import annotations

import os
from pathlib import Path

from provision.errors import InputError

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGED = PACKAGE_DIR / "_assets"
CHECKOUT = PACKAGE_DIR.parent

# The asset directories, relative to a home (what setup.py copies into the wheel).
ASSETS = ("playbooks", "inventory/templates", "site-specs")
MARKER = "inventory/templates/hosts.yml.j2"


def home() -> Path:
    """The directory holding forge's assets (see the module docstring for the order)."""
    env = os.environ.get("FORGE_HOME")
    if env:
        chosen = Path(env).expanduser()
        if not (chosen / MARKER).is_file():
            raise InputError(f"FORGE_HOME={env}: not a forge home (no {MARKER} there)",
                             hint="point it at a copy of forge's playbooks/ and inventory/ "
                                  "(a checkout, or provision/_assets of an install), or unset it")
        return chosen.resolve()
    if (PACKAGED / MARKER).is_file():
        return PACKAGED
    if (CHECKOUT / MARKER).is_file():
        return CHECKOUT
    raise InputError(f"forge's assets are not installed (no {PACKAGED / MARKER})",
                     hint="reinstall forge from a wheel built by `pip wheel .`, "
                          "or set FORGE_HOME to a checkout")


def repo_root() -> Path:
    """Kept for callers that think of the assets as a checkout: same as :func:`home`."""
    return home()


def package_text(relative: str) -> str:
    """A data file shipped inside the package (``spec/catalog.yaml``), as text.

    Read from beside the modules: forge is installed as files, and this spares
    ``importlib.resources`` (and the tempfile/shutil it imports) at every start.
    """
    return (PACKAGE_DIR / relative).read_text(encoding="utf-8")


def templates_dir() -> Path:
    return home() / "inventory" / "templates"


def playbooks_dir() -> Path:
    return home() / "playbooks"


def site_playbook() -> Path:
    return playbooks_dir() / "site.yml"


def node_programs_dir() -> Path:
    """The programs that run on the nodes (collectors, GPU workloads, the health check):
    a package of forge itself, so always beside this module, never in a home."""
    return PACKAGE_DIR / "node_programs"


def examples_dir() -> Path:
    return home() / "site-specs"


def lab_state_dir() -> Path:
    """The default lab's state: ``.lab/`` of a checkout; an install's XDG state directory."""
    if (CHECKOUT / "pyproject.toml").is_file() and (CHECKOUT / MARKER).is_file():
        return CHECKOUT / ".lab"
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "forge" / "lab"
